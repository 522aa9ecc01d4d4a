import { ApiError } from './errors';

/**
 * The `filter` of Vertex List calls (AIP-160 subset the endpoint/model list docs describe):
 * `endpoint=ID` / `model=ID`, `display_name="x"`, `labels.key=value`, `labels.key:*`, `labels:key`,
 * joined with AND / OR / NOT / `-` and parentheses; whitespace between terms means AND. The parser
 * (`parseFilterExpression`) also reads Cloud Logging's filters (logging.ts), whose keywords may be
 * in any case.
 */

export interface Filterable {
  id: string;
  displayName: string;
  labels: Record<string, string>;
}

export type FilterNode = Node;
type Node =
  | { kind: 'and'; children: Node[] }
  | { kind: 'or'; children: Node[] }
  | { kind: 'not'; child: Node }
  | { kind: 'restriction'; path: string[]; op: string; value: string };

type Token = { type: 'word' | 'string' | 'op' | 'lparen' | 'rparen'; text: string };

const MAX_FILTER_LENGTH = 2000;

function invalid(filter: string, why: string): ApiError {
  return new ApiError('INVALID_ARGUMENT', `Invalid filter "${filter}": ${why}`);
}

function tokenize(filter: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < filter.length) {
    const c = filter[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')') {
      tokens.push({ type: c === '(' ? 'lparen' : 'rparen', text: c });
      i++;
    } else if (c === '"') {
      let text = '';
      i++;
      while (i < filter.length && filter[i] !== '"') {
        if (filter[i] === '\\' && i + 1 < filter.length) i++;
        text += filter[i];
        i++;
      }
      if (i >= filter.length) throw invalid(filter, 'unterminated string');
      i++;
      tokens.push({ type: 'string', text });
    } else {
      const op = /^(!=|<=|>=|=|:|<|>)/.exec(filter.slice(i));
      if (op) {
        tokens.push({ type: 'op', text: op[1]! });
        i += op[1]!.length;
        continue;
      }
      const word = /^[^\s()"=!<>:]+/.exec(filter.slice(i));
      if (!word) throw invalid(filter, `unexpected character '${c}'`);
      tokens.push({ type: 'word', text: word[0] });
      i += word[0].length;
    }
  }
  return tokens;
}

class Parser {
  private pos = 0;
  constructor(
    private readonly filter: string,
    private readonly tokens: Token[],
    private readonly anyCaseKeywords: boolean,
  ) {}

  private isKeyword(token: Token | undefined, keyword: 'AND' | 'OR' | 'NOT'): boolean {
    if (token?.type !== 'word') return false;
    return (this.anyCaseKeywords ? token.text.toUpperCase() : token.text) === keyword;
  }

  parse(): Node {
    const node = this.expression();
    if (this.pos < this.tokens.length)
      throw invalid(this.filter, `unexpected "${this.tokens[this.pos]!.text}"`);
    return node;
  }

  private peek(): Token | undefined {
    return this.tokens[this.pos];
  }

  private expression(): Node {
    const children = [this.factor()];
    for (;;) {
      const next = this.peek();
      if (!next || next.type === 'rparen') break;
      if (this.isKeyword(next, 'AND')) this.pos++;
      children.push(this.factor());
    }
    return children.length === 1 ? children[0]! : { kind: 'and', children };
  }

  private factor(): Node {
    const children = [this.term()];
    while (this.isKeyword(this.peek(), 'OR')) {
      this.pos++;
      children.push(this.term());
    }
    return children.length === 1 ? children[0]! : { kind: 'or', children };
  }

  private term(): Node {
    const token = this.peek();
    if (!token) throw invalid(this.filter, 'expression ends early');
    if (this.isKeyword(token, 'NOT') || (token.type === 'word' && token.text === '-')) {
      this.pos++;
      return { kind: 'not', child: this.term() };
    }
    if (token.type === 'word' && token.text.startsWith('-') && token.text.length > 1) {
      this.tokens[this.pos] = { type: 'word', text: token.text.slice(1) };
      return { kind: 'not', child: this.term() };
    }
    if (token.type === 'lparen') {
      this.pos++;
      const inner = this.expression();
      if (this.peek()?.type !== 'rparen') throw invalid(this.filter, 'missing ")"');
      this.pos++;
      return inner;
    }
    return this.restriction();
  }

  private restriction(): Node {
    const path: string[] = [];
    for (;;) {
      const token = this.peek();
      if (!token || (token.type !== 'word' && token.type !== 'string'))
        throw invalid(this.filter, 'expected a field name');
      this.pos++;
      if (token.type === 'string') path.push(token.text);
      else path.push(...token.text.split('.').filter((s) => s !== ''));
      // `labels."a key"`: a word ending in '.' followed by a quoted segment.
      if (token.type === 'word' && token.text.endsWith('.') && this.peek()?.type === 'string') continue;
      break;
    }
    const op = this.peek();
    if (op?.type !== 'op')
      throw invalid(this.filter, `"${path.join('.')}" needs a comparison such as = or :`);
    this.pos++;
    const value = this.peek();
    if (!value || (value.type !== 'word' && value.type !== 'string'))
      throw invalid(this.filter, `"${path.join('.')}${op.text}" needs a value`);
    this.pos++;
    return { kind: 'restriction', path, op: op.text, value: value.text };
  }
}

/** The tree of a filter (undefined when empty); throws 400 INVALID_ARGUMENT when it does not parse. */
export function parseFilterExpression(
  filter: string,
  options: { maxLength: number; anyCaseKeywords?: boolean },
): FilterNode | undefined {
  if (filter.trim() === '') return undefined;
  if (filter.length > options.maxLength)
    throw invalid(filter.slice(0, 50), `longer than ${options.maxLength} characters`);
  return new Parser(filter, tokenize(filter), options.anyCaseKeywords ?? false).parse();
}

/** Parses `filter` for a list of `idField` resources (`endpoint` or `model`); throws 400 when it is invalid. */
export function compileFilter(filter: string, idField: 'endpoint' | 'model'): (item: Filterable) => boolean {
  const root = parseFilterExpression(filter, { maxLength: MAX_FILTER_LENGTH });
  if (!root) return () => true;
  const evaluate = (node: Node, item: Filterable): boolean => {
    switch (node.kind) {
      case 'and':
        return node.children.every((c) => evaluate(c, item));
      case 'or':
        return node.children.some((c) => evaluate(c, item));
      case 'not':
        return !evaluate(node.child, item);
      default:
        return restriction(node, item);
    }
  };
  const restriction = (node: Extract<Node, { kind: 'restriction' }>, item: Filterable): boolean => {
    const [field, ...rest] = node.path;
    const equality = (actual: string | undefined) =>
      node.op === '=' ? actual === node.value : actual !== node.value;
    if (field === 'labels') {
      if (rest.length === 0) return Object.prototype.hasOwnProperty.call(item.labels, node.value);
      const key = rest.join('.');
      const has = Object.prototype.hasOwnProperty.call(item.labels, key);
      if (node.op === ':') return node.value === '*' ? has : item.labels[key] === node.value;
      return equality(has ? item.labels[key] : undefined);
    }
    return equality(field === 'display_name' || field === 'displayName' ? item.displayName : item.id);
  };
  // Check every field and operator up front, so a bad filter fails even on an empty list.
  const check = (node: Node): void => {
    if (node.kind === 'and' || node.kind === 'or') {
      node.children.forEach(check);
      return;
    }
    if (node.kind === 'not') {
      check(node.child);
      return;
    }
    const [field, ...rest] = node.path;
    const name = node.path.join('.');
    const scalar =
      rest.length === 0 && (field === idField || field === 'display_name' || field === 'displayName');
    if (scalar) {
      if (node.op !== '=' && node.op !== '!=') throw invalid(filter, `"${name}" supports only = and !=`);
      return;
    }
    if (field === 'labels') {
      if (rest.length === 0 && node.op !== ':') throw invalid(filter, 'use labels:KEY or labels.KEY=VALUE');
      if (rest.length > 0 && !['=', '!=', ':'].includes(node.op))
        throw invalid(filter, `"${name}" supports =, != and :`);
      return;
    }
    throw invalid(filter, `unsupported field "${name}" (use ${idField}, display_name or labels.KEY)`);
  };
  check(root);
  return (item) => evaluate(root, item);
}
