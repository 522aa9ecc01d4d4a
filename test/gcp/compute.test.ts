import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  InvalidRequestError,
  buildForwardingRuleBody,
  computeOperationError,
  computeRequestId,
  createGcpClient,
} from '../../src/gcp';
import { type TestServer, countingTokenSource, sendJson, startTestServer } from './test-server';

const REQUEST_ID = computeRequestId('insert-address:deployment-a');
const ATTACHMENT = 'projects/tenant-123/regions/us-central1/serviceAttachments/sa-abc';

let server: TestServer;
beforeEach(async () => {
  server = await startTestServer((req, res) =>
    sendJson(res, 200, {
      kind: 'compute#operation',
      name: 'operation-1',
      status: req.method === 'GET' ? 'DONE' : 'PENDING',
    }),
  );
});
afterEach(async () => {
  await server.close();
});

const compute = () =>
  createGcpClient({ computeBaseUrl: server.url }, { tokenSource: countingTokenSource() }).compute;

function sent(index = 0): { method: string; path: string; query: URLSearchParams; body: unknown } {
  const req = server.requests[index]!;
  const url = new URL(req.url, 'http://x');
  return {
    method: req.method,
    path: url.pathname,
    query: url.searchParams,
    body: req.body.length ? JSON.parse(req.body.toString()) : undefined,
  };
}

describe('computeRequestId', () => {
  it('is a stable, valid, non-zero UUID per seed', () => {
    expect(REQUEST_ID).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(computeRequestId('insert-address:deployment-a')).toBe(REQUEST_ID);
    expect(computeRequestId('insert-address:deployment-b')).not.toBe(REQUEST_ID);
  });
});

describe('addresses', () => {
  it('insertAddress POSTs a regional INTERNAL address with requestId in the query', async () => {
    const op = await compute().insertAddress({
      project: 'consumer-project',
      region: 'us-central1',
      name: 'gd-psc-ip',
      subnetwork: 'default-subnet',
      address: '10.10.0.5',
      requestId: REQUEST_ID,
    });
    expect(op).toMatchObject({ name: 'operation-1', status: 'PENDING' });
    const req = sent();
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/compute/v1/projects/consumer-project/regions/us-central1/addresses');
    expect(req.query.get('requestId')).toBe(REQUEST_ID);
    expect(req.body).toEqual({
      name: 'gd-psc-ip',
      addressType: 'INTERNAL',
      subnetwork: 'projects/consumer-project/regions/us-central1/subnetworks/default-subnet',
      address: '10.10.0.5',
    });
  });

  it('getAddress and deleteAddress address the resource by name', async () => {
    server.handler = (req, res) =>
      req.method === 'GET'
        ? sendJson(res, 200, { name: 'gd-psc-ip', address: '10.10.0.5', status: 'RESERVED' })
        : sendJson(res, 200, { name: 'operation-2', status: 'RUNNING' });
    const c = compute();
    const ref = { project: 'consumer-project', region: 'us-central1', name: 'gd-psc-ip' };
    expect(await c.getAddress(ref)).toMatchObject({ address: '10.10.0.5', status: 'RESERVED' });
    await c.deleteAddress({ ...ref, requestId: computeRequestId('delete-address:x') });
    expect(sent(0).path).toBe(
      '/compute/v1/projects/consumer-project/regions/us-central1/addresses/gd-psc-ip',
    );
    expect(sent(1).method).toBe('DELETE');
    expect(sent(1).query.get('requestId')).toBe(computeRequestId('delete-address:x'));
  });
});

describe('forwarding rules', () => {
  const input = {
    project: 'consumer-project',
    region: 'us-central1',
    name: 'gd-psc-fr',
    target: `https://www.googleapis.com/compute/v1/${ATTACHMENT}`,
    network: 'vpc-net',
    ipAddress: 'gd-psc-ip',
    requestId: REQUEST_ID,
  };

  it('builds the PSC body with IPAddress, loadBalancingScheme "" and full resource paths', () => {
    expect(buildForwardingRuleBody(input)).toEqual({
      name: 'gd-psc-fr',
      target: ATTACHMENT,
      network: 'projects/consumer-project/global/networks/vpc-net',
      IPAddress: 'projects/consumer-project/regions/us-central1/addresses/gd-psc-ip',
      loadBalancingScheme: '',
    });
    expect(buildForwardingRuleBody({ ...input, ipAddress: '10.10.0.5' }).IPAddress).toBe('10.10.0.5');
  });

  it('insertForwardingRule POSTs it with requestId and serviceDirectoryRegistrations when asked', async () => {
    await compute().insertForwardingRule({
      ...input,
      serviceDirectoryRegistration: {
        namespace: 'projects/consumer-project/locations/us-central1/namespaces/ns',
      },
    });
    const req = sent();
    expect(req.path).toBe('/compute/v1/projects/consumer-project/regions/us-central1/forwardingRules');
    expect(req.query.get('requestId')).toBe(REQUEST_ID);
    expect(req.body).toMatchObject({
      IPAddress: 'projects/consumer-project/regions/us-central1/addresses/gd-psc-ip',
      loadBalancingScheme: '',
      serviceDirectoryRegistrations: [
        { namespace: 'projects/consumer-project/locations/us-central1/namespaces/ns' },
      ],
    });
  });

  it('getForwardingRule reads the PSC connection status', async () => {
    server.handler = (_req, res) =>
      sendJson(res, 200, {
        name: 'gd-psc-fr',
        IPAddress: '10.10.0.5',
        pscConnectionStatus: 'ACCEPTED',
        pscConnectionId: '123456789012345678',
      });
    const rule = await compute().getForwardingRule({
      project: 'consumer-project',
      region: 'us-central1',
      name: 'gd-psc-fr',
    });
    expect(rule).toMatchObject({
      IPAddress: '10.10.0.5',
      pscConnectionStatus: 'ACCEPTED',
      pscConnectionId: '123456789012345678',
    });
  });

  const bad: Array<[string, object, RegExp]> = [
    [
      'a target that is not a service attachment',
      { target: 'projects/p/regions/r/addresses/a' },
      /must be a service attachment/,
    ],
    ['a name with capitals', { name: 'Bad_Name' }, /name/],
    ['a requestId that is not a UUID', { requestId: 'retry-1' }, /requestId: must be a UUID/],
    ['the all-zero UUID', { requestId: '00000000-0000-0000-0000-000000000000' }, /all-zero UUID/],
    ['an IPv6-ish garbage address', { ipAddress: '10.0.0.999' }, /ipAddress/],
  ];
  it.each(bad)('rejects %s before sending', async (_what, patch, message) => {
    await expect(compute().insertForwardingRule({ ...input, ...patch })).rejects.toThrow(InvalidRequestError);
    await expect(compute().insertForwardingRule({ ...input, ...patch })).rejects.toThrow(message);
    expect(server.requests).toHaveLength(0);
  });
});

describe('region operations', () => {
  it('getRegionOperation polls the named operation; DONE with errors is a failure', async () => {
    server.handler = (_req, res) =>
      sendJson(res, 200, {
        name: 'operation-9',
        status: 'DONE',
        httpErrorStatusCode: 409,
        error: {
          errors: [{ code: 'RESOURCE_ALREADY_EXISTS', message: "The resource 'gd-psc-ip' already exists" }],
        },
      });
    const op = await compute().getRegionOperation({
      project: 'consumer-project',
      region: 'us-central1',
      operation: 'operation-9',
    });
    expect(sent().path).toBe(
      '/compute/v1/projects/consumer-project/regions/us-central1/operations/operation-9',
    );
    expect(computeOperationError(op)).toMatchObject({
      status: 'ALREADY_EXISTS',
      classification: 'permanent',
    });
  });
});
