import { describe, expect, it } from 'vitest';
import {
  GcpApiError,
  InvalidRequestError,
  type Operation,
  dedicatedTarget,
  endpointTraffic,
  isAlreadyExists,
  readDeployModelResponse,
  readDeployResponse,
} from '../../src/gcp';
import { freshProject, getActivityTestEnv, uploadModel } from '../activities/env';
import { eventually } from '../harness/eventually';

/**
 * The calls an upgrade makes, through the real client and ADC path against the emulator: a second
 * deployed model with a fixed id (a repeat is ALREADY_EXISTS, never a second one), the traffic split
 * on the endpoint's etag, who answered each call, and what Cloud Monitoring counts for each.
 */

const MACHINE = { machineType: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 } as const;

describe('the calls of a canary', () => {
  it('deployModel with a fixed id, traffic split on the etag, answers attributed, Monitoring counts them', async () => {
    const { gcp } = await getActivityTestEnv();
    const project = await freshProject('gcp-canary', { deployModelMs: 100 });
    const modelUri = await uploadModel();
    const done = (name: string) =>
      eventually(`operation ${name}`, async () => {
        const op = await gcp.vertex.getOperation(name);
        return op.done ? op : undefined;
      });
    const deployed: Operation = await done(
      (
        await gcp.vertex.deploy({
          project,
          location: 'us-central1',
          gcsUri: modelUri,
          modelUserId: 'canary-model',
          endpointUserId: 'canary-endpoint',
          machine: MACHINE,
        })
      ).name,
    );
    const { endpoint, model } = readDeployResponse(deployed);
    const first = (await gcp.vertex.getEndpoint(endpoint)).deployedModels[0]!.id;

    const request = {
      endpoint,
      deployedModelId: '1234567890',
      model: model!,
      machine: MACHINE,
      minReplicaCount: 1,
      trafficSplit: { [first]: 100, '0': 0 },
    };
    const op = await gcp.vertex.deployModel(request);
    // A retry after a lost answer is recognised, not deployed twice.
    const again = await gcp.vertex.deployModel(request).catch((err: unknown) => err);
    expect(isAlreadyExists(again)).toBe(true);
    expect(readDeployModelResponse(await done(op.name)).id).toBe('1234567890');
    const ready = await eventually('both deployed models ready', async () => {
      const current = await gcp.vertex.getEndpoint(endpoint);
      return current.deployedModels.every((m) => (m.status?.availableReplicaCount ?? 0) >= 1)
        ? current
        : undefined;
    });
    expect(ready.trafficSplit).toEqual({ [first]: 100, '1234567890': 0 });

    const split = await gcp.vertex.setTrafficSplit(
      endpoint,
      { [first]: 50, '1234567890': 50 },
      { etag: ready.etag! },
    );
    expect(split.trafficSplit).toEqual({ [first]: 50, '1234567890': 50 });
    const stale = await gcp.vertex
      .setTrafficSplit(endpoint, { [first]: 100 }, { etag: ready.etag! })
      .catch((err: unknown) => err);
    expect(stale).toBeInstanceOf(GcpApiError);
    expect((stale as GcpApiError).status).toBe('ABORTED');
    await expect(() =>
      gcp.vertex.setTrafficSplit(endpoint, { [first]: 60, '1234567890': 60 }),
    ).rejects.toThrow(InvalidRequestError);

    const target = dedicatedTarget(split, gcp.config.dedicatedDnsSuffixes);
    const servedBy: Record<string, number> = {};
    for (let i = 0; i < 40; i++) {
      await gcp.prediction.chatCompletions(
        target,
        { messages: [{ role: 'user', content: `hi ${i}` }], max_tokens: 4 },
        { servedBy: (s) => (servedBy[s.deployedModelId!] = (servedBy[s.deployedModelId!] ?? 0) + 1) },
      );
    }
    expect(Object.keys(servedBy).sort()).toEqual([first, '1234567890'].sort());

    const traffic = await endpointTraffic(gcp.monitoring, {
      project,
      endpointId: 'canary-endpoint',
      windowMs: 60_000,
      latency: true,
    });
    for (const id of [first, '1234567890']) {
      expect(traffic[id]).toMatchObject({ requests: servedBy[id], errors: 0 });
      expect(traffic[id]!.p95Ms).toBeGreaterThanOrEqual(0);
    }
  });
});
