import { describe, expect, it } from 'vitest';
import { type StartFailureClass, classifyContainerLogs } from '../../src/diagnosis/container-logs';

/** Lines as vLLM and Vertex's serving containers print them, one failure each. */
const FAILURES: Record<Exclude<StartFailureClass, 'unknown'>, string[]> = {
  'out-of-gpu-memory': [
    'INFO 12-07 10:00:01 model_runner.py:1060] Loading model weights took 14.99 GB',
    'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 22.05 GiB of which 1.19 GiB is free.',
  ],
  'invalid-argument': ['api_server.py: error: unrecognized arguments: --max-modle-len=4096'],
  'unsupported-architecture': [
    "ValueError: Model architectures ['FancyNewForCausalLM'] are not supported for now. Supported architectures: [...]",
  ],
  'tokenizer-error': [
    "OSError: Can't load tokenizer for '/tmp/model'. If you were trying to load it from 'https://huggingface.co/models', make sure you don't have a local directory with the same name.",
  ],
  'corrupt-weight-file': [
    'safetensors_rust.SafetensorError: Error while deserializing header: HeaderTooLarge',
  ],
  'missing-weight-file': ['RuntimeError: Cannot find any model weights with `/tmp/model`'],
  'cuda-error': ['RuntimeError: CUDA error: no kernel image is available for execution on the device'],
  'port-or-health-mismatch': ['INFO:     Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)'],
};

describe('classifyContainerLogs: why a serving container did not start', () => {
  it.each(Object.entries(FAILURES))('recognizes %s from the line that says so', (expected, lines) => {
    const cause = classifyContainerLogs(['INFO starting vLLM API server', ...lines]);
    expect(cause.class).toBe(expected);
    expect(cause.evidence).toBe(lines.at(-1));
    expect(cause.explanation.length).toBeGreaterThan(20);
    expect(cause.lines.at(-1)).toBe(lines.at(-1));
  });

  it('the last failure decides, not an earlier warning', () => {
    const cause = classifyContainerLogs([
      'WARNING tokenizer_config.json has no chat template; using the default',
      'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.00 GiB',
    ]);
    expect(cause.class).toBe('out-of-gpu-memory');
  });

  it('no known failure is unknown, with the lines to read; no lines says to check container logging', () => {
    const unknown = classifyContainerLogs(['INFO loading', 'Killed']);
    expect(unknown).toMatchObject({ class: 'unknown', lines: ['INFO loading', 'Killed'] });
    expect(unknown.evidence).toBeUndefined();
    expect(classifyContainerLogs([]).explanation).toMatch(/container logging/);
  });

  it('keeps the last 20 lines, each at most 500 characters, with tokens removed', () => {
    const token = `hf_${'a1B2'.repeat(8)}`;
    const messages = [
      ...Array.from({ length: 30 }, (_, i) => `line ${i}`),
      `INFO args: --hf-token ${token} --api-key s3cretvalue123 Authorization: Bearer ya29.abcdefghijk`,
      'x'.repeat(2_000),
      'torch.OutOfMemoryError: CUDA out of memory.',
    ];
    const cause = classifyContainerLogs(messages);
    expect(cause.lines).toHaveLength(20);
    expect(cause.lines[0]).toBe('line 13');
    expect(Math.max(...cause.lines.map((l) => l.length))).toBeLessThanOrEqual(500);
    const text = JSON.stringify(cause);
    for (const secret of [token, 's3cretvalue123', 'ya29.abcdefghijk']) expect(text).not.toContain(secret);
    expect(text).toContain('[REDACTED]');
  });
});
