import { describe, expect, it } from 'vitest';
import { InvalidSpecError, compileAnswerRegex, parseDeploymentSpec } from '../../src/spec';

const minimal = {
  name: 'llama-ft',
  project: 'my-project',
  region: 'us-central1',
  model: { uri: 'gs://bucket/models/llama/' },
};

const privateAccess = {
  type: 'private',
  projectAllowlist: ['net-project'],
  consumerProject: 'net-project',
  network: 'projects/net-project/global/networks/vpc',
  subnetwork: 'projects/net-project/regions/us-central1/subnetworks/models',
};

function issuesOf(input: unknown): string[] {
  try {
    parseDeploymentSpec(input);
  } catch (err) {
    if (err instanceof InvalidSpecError) return err.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw err;
  }
  throw new Error('spec was accepted');
}

const withRegex = (regex: string) => ({
  ...minimal,
  smoke: { tests: [{ prompt: 'hi', expect: { regex } }] },
});

describe('smoke expect.regex (RE2)', () => {
  it('accepts the RE2 syntax users write', () => {
    for (const regex of ['\\w+', '^(?i)contract', '(?<year>\\d{4})-\\d\\d', '\\p{L}+', 'a|b', '^(a+)+$']) {
      expect(parseDeploymentSpec(withRegex(regex)).smoke.tests[0]!.expect.regex, regex).toBe(regex);
    }
  });

  it('rejects backreferences and lookarounds, naming the field and what RE2 lacks', () => {
    for (const regex of ['(a)\\1', '(?<w>a)\\k<w>', 'foo(?=bar)', 'foo(?!bar)', '(?<=a)b', '(?<!a)b']) {
      const issues = issuesOf(withRegex(regex));
      expect(issues, regex).toHaveLength(1);
      expect(issues[0], regex).toMatch(
        /^smoke\.tests\[0\]\.expect\.regex: not a regular expression RE2 accepts \(/,
      );
      expect(issues[0], regex).toContain('no backreferences');
      expect(issues[0], regex).toContain('no lookarounds');
    }
    expect(issuesOf(withRegex('(unclosed'))[0]).toContain('missing closing )');
  });

  it('matches in linear time: a catastrophic-backtracking pattern gets its answer at once', () => {
    const answer = `${'a'.repeat(50_000)}b`;
    expect(compileAnswerRegex('^(a+)+$').test(answer)).toBe(false);
    expect(compileAnswerRegex('^(a+)+b$').test(answer)).toBe(true);
    expect(compileAnswerRegex('CONTRACT', true).test('a contract is')).toBe(true);
    expect(compileAnswerRegex('CONTRACT').test('a contract is')).toBe(false);
  });
});

describe('access.tlsServerName', () => {
  it('takes a DNS name on private access', () => {
    const spec = parseDeploymentSpec({
      ...minimal,
      access: { ...privateAccess, tlsServerName: 'llm.ml-vpc.internal.example.com' },
    });
    expect(spec.access).toMatchObject({ type: 'private', tlsServerName: 'llm.ml-vpc.internal.example.com' });
    expect(parseDeploymentSpec({ ...minimal, access: privateAccess }).access).not.toHaveProperty(
      'tlsServerName',
    );
  });

  it('rejects an IP address or a malformed name, and any tlsServerName on public access', () => {
    for (const bad of ['10.20.0.15', 'https://llm.example.com', 'llm..example', '-llm.example.com']) {
      expect(issuesOf({ ...minimal, access: { ...privateAccess, tlsServerName: bad } }), bad).toEqual([
        'access.tlsServerName: expected a DNS name like "llm.internal.example.com" (not an IP address)',
      ]);
    }
    expect(issuesOf({ ...minimal, access: { type: 'public', tlsServerName: 'llm.example.com' } })).toEqual([
      'access: unknown field(s) "tlsServerName"',
    ]);
  });
});
