import { describe, expect, it } from 'vitest';
import {
  FindingCollector,
  MAX_FINDINGS,
  MAX_MESSAGE_CHARS,
  REPORT_SCHEMA_VERSION,
  type ValidationReport,
  ValidationReportSchema,
} from '../../src/validation/report';
import { RULES } from '../../src/validation/rules';

function report(collector: FindingCollector): ValidationReport {
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    location: 'gs://b/m/',
    status: collector.errorCount > 0 ? 'errors' : 'ok',
    checkedAt: new Date(0).toISOString(),
    ...collector.result(),
    model: { dtypeBytes: {}, weightFormat: 'none', weightFiles: 0, tensorCount: 0 },
    objects: [],
    objectsOmitted: 0,
    stats: { objectsListed: 0, headersRead: 0, bytesRead: 0, durationMs: 0 },
  };
}

describe('FindingCollector', () => {
  it('uses the rule default severity unless told otherwise, errors first', () => {
    const c = new FindingCollector();
    c.add('generation-config.missing', 'no generation config');
    c.add('config.missing', 'no config');
    c.add('tokenizer.chat-template-missing', 'no template', { severity: 'error' });
    const { findings, summary } = c.result();
    expect(findings.map((f) => [f.rule, f.severity])).toEqual([
      ['config.missing', 'error'],
      ['tokenizer.chat-template-missing', 'error'],
      ['generation-config.missing', 'warning'],
    ]);
    expect(summary).toEqual({ errors: 2, warnings: 1, infos: 0 });
  });

  it('caps findings per rule and in total, counting every one in the summary and `omitted`', () => {
    const c = new FindingCollector(3);
    for (let i = 0; i < 10; i++) c.add('index.missing-shard', `missing ${i}`);
    const rules = Object.keys(RULES) as Array<keyof typeof RULES>;
    for (const rule of rules) for (let i = 0; i < 3; i++) c.add(rule, `${rule} ${i}`);
    const r = report(c);
    expect(r.findings.length).toBe(MAX_FINDINGS);
    expect(r.findings.filter((f) => f.rule === 'index.missing-shard')).toHaveLength(3);
    const total = r.summary.errors + r.summary.warnings + r.summary.infos;
    expect(total).toBe(10 + rules.length * 3);
    expect(r.findings.length + r.omitted.reduce((n, o) => n + o.count, 0)).toBe(total);
    expect(r.omitted.find((o) => o.rule === 'index.missing-shard')?.count).toBe(10);
  });

  it('keeps the report bounded and schema-valid whatever the messages and file names', () => {
    const c = new FindingCollector();
    for (const rule of Object.keys(RULES) as Array<keyof typeof RULES>) {
      for (let i = 0; i < 20; i++) c.add(rule, 'x'.repeat(100_000), { file: `f\u0000${'y'.repeat(10_000)}` });
    }
    const r = report(c);
    expect(() => ValidationReportSchema.parse(r)).not.toThrow();
    for (const f of r.findings) expect(f.message.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS + 1);
    const json = JSON.stringify(r);
    expect(json.length).toBeLessThan(512 * 1024);
    expect(ValidationReportSchema.parse(JSON.parse(json))).toEqual(r);
  });
});

describe('rule catalogue', () => {
  it('ids are namespaced, unique and documented', () => {
    for (const [id, rule] of Object.entries(RULES)) {
      expect(id).toMatch(/^[a-z-]+\.[a-z0-9-]+$/);
      expect(rule.description.length).toBeGreaterThan(10);
    }
  });
});
