import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmulatorAdminClient, writeEmulatorCredentials } from '../../src/emulator';
import {
  type GcpClient,
  type Operation,
  computeOperationError,
  computeRequestId,
  createGcpClient,
  everyApiAt,
  dedicatedTarget,
  isGcpApiError,
  deleteIfExists,
  findEndpointsByLabels,
  hasLabels,
  isAlreadyExists,
  isNotFound,
  pscTarget,
  readDeployResponse,
} from '../../src/gcp';
import { generateSampleModel } from '../../src/sample-model';
import { createTestBucket, getTestEnv } from '../harness/env';

/**
 * The client end to end against the harness's emulator, through the real ADC path (an
 * `external_account` file whose token exchange is the emulator's STS endpoint).
 */

const PROJECT = 'gcp-client-e2e';
const LOCATION = 'us-central1';

let credentialsDir: string;
let gcp: GcpClient;
let admin: EmulatorAdminClient;
let modelUri: string;

beforeAll(async () => {
  const env = await getTestEnv();
  const bucket = await createTestBucket(env.storage, 'gcp-e2e');
  modelUri = (
    await generateSampleModel({ location: `gs://${bucket}/models/tiny-llama` }, { storage: env.storage })
  ).modelUri;
  admin = new EmulatorAdminClient(env.emulatorUrl);
  credentialsDir = await mkdtemp(path.join(os.tmpdir(), 'gcp-e2e-adc-'));
  const credentialsFile = await writeEmulatorCredentials(credentialsDir, env.emulatorUrl);
  gcp = createGcpClient({
    ...everyApiAt(env.emulatorUrl),
    credentialsFile,
  });
});

afterAll(async () => {
  if (credentialsDir) await rm(credentialsDir, { recursive: true, force: true });
});

/** Polls `read` until `done` holds; the emulator's simulated work takes a few seconds at most. */
async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  for (let attempt = 0; attempt < 600; attempt++) {
    const value = await read();
    if (done(value)) return value;
    await delay(50);
  }
  throw new Error(`gave up waiting for ${what}`);
}

const finished = (name: string) =>
  until(
    () => gcp.vertex.getOperation(name),
    (op: Operation) => op.done,
    name,
  );

async function collectText(
  stream: AsyncIterable<{ choices: Array<{ delta: { content?: string | null } }> }>,
) {
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  return text;
}

describe('GCP client against the emulator', () => {
  it('deploys, serves chat (unary and streaming) on the dedicated host, then undeploys and deletes', async () => {
    const input = {
      project: PROJECT,
      location: LOCATION,
      gcsUri: modelUri,
      modelUserId: 'e2e-public',
      endpointUserId: 'e2e-public',
      endpointDisplayName: 'e2e public',
      machine: { machineType: 'g2-standard-12', acceleratorType: 'NVIDIA_L4' as const, acceleratorCount: 1 },
      minReplicaCount: 1,
    };
    const started = await gcp.vertex.deploy(input);
    expect(started.done).toBe(false);
    const deployed = readDeployResponse(await finished(started.name));
    expect(deployed.endpoint).toMatch(/^projects\/\d+\/locations\/us-central1\/endpoints\/e2e-public$/);

    // The same IDs again: the retry is detected instead of creating a second endpoint.
    const again = await gcp.vertex.deploy(input).then(
      (op) => finished(op.name).then((done) => done.error),
      (err: unknown) => err,
    );
    expect(isAlreadyExists(again)).toBe(true);

    const endpoint = await until(
      () => gcp.vertex.getEndpoint(deployed.endpoint),
      (e) => (e.deployedModels[0]?.status?.availableReplicaCount ?? 0) >= 1,
      'a ready replica',
    );
    const target = dedicatedTarget(endpoint);

    // Labels go on after :deploy (its v1beta1 request has no user labels); then the deployment is findable.
    const labels = { 'managed-by': 'garden-deploy', deployment: 'e2e-public' };
    const labelled = await gcp.vertex.setEndpointLabels(endpoint.name, labels, { etag: endpoint.etag });
    expect(hasLabels(labelled.labels, labels)).toBe(true);
    const found = await findEndpointsByLabels(gcp.vertex, { project: PROJECT, location: LOCATION }, labels);
    expect(found.map((e) => e.name)).toEqual([endpoint.name]);
    const model = await gcp.vertex.setModelLabels(deployed.model!, labels);
    expect(model.labels).toMatchObject(labels);

    const answer = await gcp.prediction.chatCompletions(target, {
      messages: [{ role: 'user', content: 'Say hello.' }],
      max_tokens: 16,
    });
    expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0);

    const streamed = await collectText(
      gcp.prediction.chatCompletionsStream(target, {
        messages: [{ role: 'user', content: 'Say hello.' }],
        max_tokens: 16,
      }),
    );
    expect(streamed.length).toBeGreaterThan(0);

    const predicted = await gcp.prediction.predict(target, {
      instances: [{ prompt: 'Hello', max_tokens: 8 }],
    });
    expect(predicted.predictions.length).toBe(1);

    for (const model of endpoint.deployedModels) {
      const op = await gcp.vertex.undeployModel({ endpoint: endpoint.name, deployedModelId: model.id });
      expect((await finished(op.name)).error).toBeUndefined();
    }
    expect((await finished((await gcp.vertex.deleteEndpoint(endpoint.name)).name)).error).toBeUndefined();
    expect((await finished((await gcp.vertex.deleteModel(deployed.model!)).name)).error).toBeUndefined();

    const gone = await gcp.vertex.getEndpoint(endpoint.name).catch((err: unknown) => err);
    expect(isNotFound(gone)).toBe(true);
    await expect(deleteIfExists(() => gcp.vertex.deleteEndpoint(endpoint.name))).resolves.toBeUndefined();
  });

  it('deploys privately and serves chat through a PSC address and forwarding rule', async () => {
    const consumer = 'gcp-client-consumer';
    const started = await gcp.vertex.deploy({
      project: PROJECT,
      location: LOCATION,
      gcsUri: modelUri,
      modelUserId: 'e2e-private',
      endpointUserId: 'e2e-private',
      machine: { machineType: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
      privateServiceConnect: { projectAllowlist: [consumer] },
    });
    const deployed = readDeployResponse(await finished(started.name));
    const endpoint = await until(
      () => gcp.vertex.getEndpoint(deployed.endpoint),
      (e) =>
        (e.deployedModels[0]?.status?.availableReplicaCount ?? 0) >= 1 &&
        !!(
          e.privateServiceConnectConfig?.serviceAttachment ??
          e.deployedModels[0]?.privateEndpoints?.serviceAttachment
        ),
      'a ready private endpoint',
    );
    expect(() => dedicatedTarget({ name: endpoint.name })).toThrow(/use pscTarget/);
    const attachment =
      endpoint.privateServiceConnectConfig?.serviceAttachment ??
      endpoint.deployedModels[0]!.privateEndpoints!.serviceAttachment!;

    const where = { project: consumer, region: LOCATION };
    const computeDone = (operation: string) =>
      until(
        () => gcp.compute.getRegionOperation({ ...where, operation }),
        (op) => op.status === 'DONE',
        operation,
      );
    const addressOp = await gcp.compute.insertAddress({
      ...where,
      name: 'e2e-psc-ip',
      subnetwork: 'default',
      requestId: computeRequestId('e2e:address'),
    });
    expect(computeOperationError(await computeDone(addressOp.name))).toBeUndefined();
    const address = await gcp.compute.getAddress({ ...where, name: 'e2e-psc-ip' });
    expect(address.address).toMatch(/^\d+\.\d+\.\d+\.\d+$/);

    const ruleOp = await gcp.compute.insertForwardingRule({
      ...where,
      name: 'e2e-psc-fr',
      target: attachment,
      network: 'default',
      ipAddress: 'e2e-psc-ip',
      requestId: computeRequestId('e2e:forwarding-rule'),
    });
    expect(computeOperationError(await computeDone(ruleOp.name))).toBeUndefined();
    const rule = await until(
      () => gcp.compute.getForwardingRule({ ...where, name: 'e2e-psc-fr' }),
      (r) => r.pscConnectionStatus === 'ACCEPTED',
      'PSC connection ACCEPTED',
    );
    expect(rule.IPAddress).toBe(address.address);

    const answer = await gcp.prediction.chatCompletions(pscTarget(endpoint.name, rule.IPAddress!), {
      messages: [{ role: 'user', content: 'Hello over PSC' }],
      max_tokens: 8,
    });
    expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0);

    const ruleDelete = await gcp.compute.deleteForwardingRule({ ...where, name: 'e2e-psc-fr' });
    expect(computeOperationError(await computeDone(ruleDelete.name))).toBeUndefined();
    const addressDelete = await gcp.compute.deleteAddress({ ...where, name: 'e2e-psc-ip' });
    expect(computeOperationError(await computeDone(addressDelete.name))).toBeUndefined();
    const missing = await gcp.compute
      .getAddress({ ...where, name: 'e2e-psc-ip' })
      .catch((err: unknown) => err);
    expect(isNotFound(missing)).toBe(true);
  });

  it('maps a 403 fault to a permanent PERMISSION_DENIED that names the missing permission', async () => {
    const project = 'gcp-client-forbidden';
    const ids = await admin.addFaultRules([
      { route: 'vertex.endpoints.get', project, action: '403' },
      { route: 'compute.forwardingRules.delete', project, action: '403' },
    ]);
    try {
      const endpoint = `projects/${project}/locations/${LOCATION}/endpoints/e1`;
      const vertex = await gcp.vertex.getEndpoint(endpoint).catch((err: unknown) => err);
      if (!isGcpApiError(vertex)) throw vertex;
      expect(vertex).toMatchObject({
        status: 'PERMISSION_DENIED',
        httpStatus: 403,
        classification: 'permanent',
        details: {
          errorInfo: {
            reason: 'IAM_PERMISSION_DENIED',
            metadata: { permission: 'aiplatform.endpoints.get' },
          },
        },
      });
      expect(vertex.hint).toContain('permission aiplatform.endpoints.get');
      expect(vertex.hint).toContain('roles/aiplatform.user');

      const compute = await gcp.compute
        .deleteForwardingRule({ project, region: LOCATION, name: 'psc-fr' })
        .catch((err: unknown) => err);
      if (!isGcpApiError(compute)) throw compute;
      expect(compute).toMatchObject({
        status: 'PERMISSION_DENIED',
        httpStatus: 403,
        classification: 'permanent',
      });
      expect(compute.message).toContain("Required 'compute.forwardingRules.delete' permission");
      expect(compute.hint).toContain('roles/compute.networkAdmin');
    } finally {
      for (const id of ids) await admin.clearFaults({ id });
    }
  });
});
