import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { type TemporalConnection, connectTemporal, startDeployment, workflowUiUrl } from '../../src/client';
import { findFreePorts } from '../../src/local-stack/process';
import { type LocalStack, startLocalStack } from '../../src/local-stack/stack';
import { type TemporalDevServer, startTemporalDevServer } from '../../src/local-stack/temporal';

/**
 * What a person sees in a real browser: the local stack's Web UI, started with the codec
 * endpoint (`dev --encrypt`), shows an encrypted deployment's spec decoded; a Web UI without it
 * shows the same kind of deployment as ciphertext only.
 */

/** Debian's package; scripts/install-tools.sh installs it (as root or with passwordless sudo). */
const CHROMIUM = process.env.GARDEN_DEPLOY_CHROMIUM || '/usr/bin/chromium';
/** `binary/encrypted` in base64: how the UI shows the encoding of a payload it cannot decode. */
const ENCRYPTED_B64 = Buffer.from('binary/encrypted').toString('base64');
const PAGE_WAIT = { timeout: 30_000 };

let dir: string;
let stack: LocalStack;
let plain: TemporalDevServer;
let browser: Browser;
const connections: TemporalConnection[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}: run ./scripts/install-tools.sh as root (it installs Debian's ` +
        'chromium package), or `apt-get install chromium`, or set GARDEN_DEPLOY_CHROMIUM to a Chromium binary',
    );
  }
  dir = await mkdtemp(path.join(os.tmpdir(), 'garden-deploy-web-ui-'));
  const [temporalPort, uiPort, gcsPort, emulatorPort, codecPort, plainPort, plainUiPort] =
    await findFreePorts(7);
  [stack, plain, browser] = await Promise.all([
    startLocalStack({
      dataDir: path.join(dir, 'stack'),
      temporalPort: temporalPort!,
      uiPort,
      gcsPort: gcsPort!,
      emulatorPort: emulatorPort!,
      encryption: { codecPort: codecPort! },
    }),
    startTemporalDevServer({
      binary: inject('temporalBinary'),
      port: plainPort!,
      uiPort: plainUiPort,
      dbFile: path.join(dir, 'plain.db'),
      logFile: path.join(dir, 'plain.log'),
    }),
    chromium.launch({ executablePath: CHROMIUM, headless: true }),
  ]);
}, 90_000);

afterAll(async () => {
  await Promise.allSettled([
    browser?.close(),
    stack?.stop(),
    plain?.stop(),
    ...connections.map((connection) => connection.close()),
  ]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Starts (no worker needed) a deployment through a client holding the stack's keys; its page and secrets. */
async function encryptedDeployment(address: string, uiUrl: string) {
  const connection = await connectTemporal({
    env: {
      TEMPORAL_ADDRESS: address,
      TEMPORAL_CONFIG_FILE: path.join(dir, 'none.toml'),
      GARDEN_DEPLOY_CODEC_KEY_FILE: stack.info.codec!.keyFile,
    },
  });
  connections.push(connection);
  const id = randomUUID().slice(0, 8);
  const modelUri = `gs://private-${id}/models/llama-ft/`;
  const prompt = `Say the codename ${randomUUID()}`;
  const spec = {
    name: `ui-${id}`,
    project: 'ui-test',
    region: 'us-central1',
    model: { uri: modelUri },
    machine: { type: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
    smoke: { tests: [{ prompt }] },
  };
  const started = await startDeployment(connection.client, spec);
  const url = `${workflowUiUrl(uiUrl, 'default', started.workflowId)!}/${started.runId}/history`;
  return { url, modelUri, prompt };
}

const pageText = (page: Page) => page.locator('body').innerText();

describe('the Temporal Web UI with encrypted payloads', () => {
  it('shows the decoded spec through the codec server, and only ciphertext without it', async () => {
    expect(stack.info.codec).toBeDefined();
    const [decoded, opaque] = await Promise.all([
      encryptedDeployment(stack.info.temporal.address, stack.info.temporal.uiUrl!),
      encryptedDeployment(plain.address, plain.uiUrl!),
    ]);

    const page = await browser.newPage();
    await page.goto(decoded.url);
    // The UI fetches the history, then asks the codec server (CORS preflight, then POST /decode).
    await page.getByText(decoded.modelUri).first().waitFor(PAGE_WAIT);
    const shown = await pageText(page);
    expect(shown).toContain(`"uri": "${decoded.modelUri}"`);
    expect(shown).toContain(decoded.prompt);

    const other = await browser.newPage();
    await other.goto(opaque.url);
    await other.getByText(ENCRYPTED_B64).first().waitFor(PAGE_WAIT);
    const ciphertext = await pageText(other);
    expect(ciphertext).toContain('"encryption-key-id"');
    expect(ciphertext).not.toContain(opaque.modelUri);
    expect(ciphertext).not.toContain(opaque.prompt);
  });
});
