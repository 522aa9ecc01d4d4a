import type { ServerResponse } from 'node:http';
import type { Storage } from '@google-cloud/storage';
import { openModelStore } from '../storage';
import { TokenAuthority } from './auth';
import { CallRates } from './call-rates';
import { restartLines, serveAttempt } from './container';
import { ApiError, type RpcStatus } from './errors';
import { FaultEngine } from './faults';
import type { Route } from './http';
import { LogStore } from './logging';
import type { MachineSpecJson } from './machines';
import { ServedRequests } from './metrics';
import { type EmulatorConfig, type Timing, TimingSchema } from './options';
import { quotaError } from './quotas';
import { inspectModelFolder } from './serving';
import {
  type DeployedModelRecord,
  type EmulatorState,
  type EndpointRecord,
  type ServingInspection,
  type VertexOperationKind,
  type VertexOperationRecord,
  emptyState,
  isProjectNumber,
  loadStateFile,
  projectNumberFor,
  saveStateFile,
  timestamp,
  touch,
} from './state';

export const V1BETA1_TYPE = 'type.googleapis.com/google.cloud.aiplatform.v1beta1';
const FLUSH_DELAY_MS = 100;
/** setTimeout's longest delay; a later due time is reached in several steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export type CreationKind = 'endpoint' | 'model' | 'deployedModel' | 'address' | 'forwardingRule';

export interface ProjectRef {
  number: string;
  /** Known once a request used the id. */
  id?: string;
}

/**
 * State, time and the background work of the emulator; the route handlers read and change it.
 * Time-driven transitions (operations finishing, resources appearing, restarts logged) follow the
 * wall clock on their own: one timer is armed for the nearest due time (`nextDue`) and `advance`
 * applies whatever is due when it fires, so an operation ends on time whether or not any request
 * comes, and a held `:wait` (`until`) answers as soon as it has. Due times are epoch milliseconds in
 * the state, so they survive a restart from the state file (the timer is armed again at start).
 */
export class EmulatorCore {
  state: EmulatorState;
  readonly faults: FaultEngine;
  readonly tokens: TokenAuthority;
  /** Answers of routed inference calls (not saved: metrics restart empty, like a fresh process). */
  readonly served = new ServedRequests();
  /** Lines of the serving containers, for Cloud Logging (not saved either). */
  readonly logs = new LogStore();
  /** Calls per project, service and second, for the admin API (not saved either). */
  readonly callRates = new CallRates();
  private dirty = false;
  private closed = false;
  private flushTimer: NodeJS.Timeout | undefined;
  /** The one timer of the nearest due time, and that time. */
  private dueTimer: NodeJS.Timeout | undefined;
  private dueAt: number | undefined;
  /** A `tick` is queued (a burst of changes costs one). */
  private wakeQueued = false;
  private ticking = false;
  /** Held calls (`until`), each checking its condition after every tick. */
  private readonly waiters = new Set<() => void>();
  private readonly inspections = new Map<string, Promise<void>>();
  /** How operations of kinds other modules own complete (registered with their routes). */
  readonly completions = new Map<VertexOperationKind, (op: VertexOperationRecord, now: number) => void>();

  constructor(
    readonly config: EmulatorConfig,
    readonly storage: Storage,
    readonly log: (line: string) => void,
  ) {
    this.state = config.stateFile ? loadStateFile(config.stateFile) : emptyState();
    this.faults = new FaultEngine(config.faults);
    this.tokens = new TokenAuthority(
      () => this.state,
      () => this.config.timing.tokenLifetimeSeconds,
      () => this.markDirty(),
    );
    // Deploys interrupted by a restart read their model folder again.
    for (const op of Object.values(this.state.operations)) {
      if (op.kind === 'deploy' && !op.done && op.deploy && !op.deploy.inspection) this.startInspection(op);
    }
    // What fell due while the emulator was down applies now; the timer is armed for the rest.
    this.wake();
  }

  now(): number {
    return Date.now();
  }

  timing(projectNumber: string): Timing {
    const override = this.state.projects[projectNumber]?.timing;
    return override ? TimingSchema.parse({ ...this.config.timing, ...override }) : this.config.timing;
  }

  /** Project number for an id or number; remembers the id so Compute names can use it. */
  resolveProject(idOrNumber: string): ProjectRef {
    if (isProjectNumber(idOrNumber)) {
      return {
        number: idOrNumber,
        ...(this.state.projects[idOrNumber]?.id ? { id: this.state.projects[idOrNumber]!.id } : {}),
      };
    }
    const number = projectNumberFor(idOrNumber);
    const known = this.state.projects[number];
    if (!known) this.state.projects[number] = { id: idOrNumber };
    else if (known.id !== idOrNumber) known.id = idOrNumber;
    else return { number, id: idOrNumber };
    this.markDirty();
    return { number, id: idOrNumber };
  }

  /** Both spellings of a project (as written, and the other form when known). */
  projectAliases(idOrNumber: string): string[] {
    const ref = this.resolveProject(idOrNumber);
    return [...new Set([idOrNumber, ref.number, ...(ref.id ? [ref.id] : [])])];
  }

  isForbidden(idOrNumber: string): boolean {
    if (this.config.forbiddenProjects.length === 0) return false;
    const aliases = this.projectAliases(idOrNumber);
    return this.config.forbiddenProjects.some(
      (p) => aliases.includes(p) || aliases.includes(projectNumberFor(p)),
    );
  }

  countCall(projectNumber: string | undefined, route: Pick<Route, 'id' | 'api'>, now: number): void {
    if (route.api === 'admin') return;
    const bucket = (this.state.calls[projectNumber ?? '-'] ??= {});
    bucket[route.id] = (bucket[route.id] ?? 0) + 1;
    this.callRates.record(projectNumber ?? '-', route.api, now);
    this.markDirty();
  }

  countCreation(projectNumber: string, kind: CreationKind): void {
    const bucket = (this.state.creations[projectNumber] ??= {});
    bucket[kind] = (bucket[kind] ?? 0) + 1;
    this.markDirty();
  }

  /** Every change goes through here: it is saved soon, and may end a held call or bring a due time nearer. */
  markDirty(): void {
    this.dirty = true;
    this.wake();
  }

  /** Saves the state file if anything changed since the last save. */
  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.dirty || !this.config.stateFile) return;
    saveStateFile(this.config.stateFile, this.state);
    this.dirty = false;
  }

  /** Saves soon: a burst of calls (e.g. status polling) costs one write, not one per call. */
  scheduleFlush(): void {
    if (!this.dirty || !this.config.stateFile || this.flushTimer || this.closed) return;
    this.flushTimer = setTimeout(() => {
      try {
        this.flush();
      } catch (err) {
        this.log(`could not save state file ${this.config.stateFile}: ${(err as Error).message}`);
      }
    }, FLUSH_DELAY_MS);
    this.flushTimer.unref();
  }

  // -------------------------------------------------------------------------------------------
  // The clock: one timer for the nearest due time, and calls held until a condition holds

  /** Queues a `tick` after the current turn (changes made inside a tick need none). */
  private wake(): void {
    if (this.wakeQueued || this.ticking || this.closed) return;
    this.wakeQueued = true;
    setImmediate(() => {
      this.wakeQueued = false;
      this.tick();
    }).unref();
  }

  /** Applies what is due, answers the held calls whose condition now holds, re-arms the timer. */
  private tick(): void {
    if (this.closed) return;
    const now = this.now();
    this.ticking = true;
    try {
      this.advance(now);
      for (const check of [...this.waiters]) check();
      this.arm(this.nextDue(now));
    } catch (err) {
      // A timer callback has no caller to report to; a request would meet the same state and answer 500.
      this.log(`internal error advancing the clock: ${(err as Error).stack ?? String(err)}`);
    } finally {
      this.ticking = false;
    }
    this.scheduleFlush();
  }

  private arm(due: number | undefined): void {
    if (due === this.dueAt && this.dueTimer) return;
    clearTimeout(this.dueTimer);
    this.dueTimer = undefined;
    this.dueAt = due;
    if (due === undefined) return;
    // A timer may fire a millisecond early: `tick` then finds the same due time ahead and re-arms.
    this.dueTimer = setTimeout(
      () => {
        this.dueTimer = undefined;
        this.tick();
      },
      Math.min(Math.max(0, due - this.now()), MAX_TIMER_MS),
    );
    this.dueTimer.unref();
  }

  /**
   * The earliest time after `now` at which `advance` has something to do. A deploy still reading
   * its model folder has none: the inspection's end is a change, which wakes the clock.
   */
  private nextDue(now: number): number | undefined {
    let next = Infinity;
    const consider = (time: number | undefined) => {
      if (time !== undefined && time > now && time < next) next = time;
    };
    for (const op of Object.values(this.state.operations)) {
      if (op.done) continue;
      const work = op.deploy;
      if (work) {
        if (work.inspection)
          consider(work.createsAfterCancel?.endsAt ?? (work.created ? op.doneAt : work.importAt));
      } else if (op.mutate?.waitFor !== undefined) {
        const deployed = op.target
          ? this.state.endpoints[op.target]?.deployedModels.find((m) => m.id === op.mutate!.deployedModelId)
          : undefined;
        consider(deployed && EmulatorCore.replicasReadyAt(deployed, op.mutate.waitFor));
      } else consider(op.doneAt);
    }
    for (const endpoint of Object.values(this.state.endpoints)) {
      for (const { stuck } of endpoint.deployedModels) {
        if (!stuck) continue;
        const restartMs = this.timing(endpoint.project).restartMs;
        if (restartMs > 0) consider(stuck.since + (stuck.logged + 1) * restartMs);
      }
    }
    for (const op of Object.values(this.state.computeOperations)) if (!op.done) consider(op.doneAt);
    return next === Infinity ? undefined : next;
  }

  /**
   * Holds a call until `done()` holds (checked after every change and due time) or `deadline`
   * passes: true then, false if the caller hung up first. How `:wait` answers without polling.
   */
  until(done: () => boolean, deadline: number, res: ServerResponse): Promise<boolean> {
    if (res.closed) return Promise.resolve(false);
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const end = (answered: boolean) => {
        this.waiters.delete(check);
        clearTimeout(timer);
        res.off('close', hungUp);
        resolve(answered);
      };
      const check = () => {
        if (done()) end(true);
      };
      const hungUp = () => end(false);
      // Unref'd: a held call never keeps the process alive.
      const timer = setTimeout(() => end(true), Math.min(Math.max(0, deadline - this.now()), MAX_TIMER_MS));
      timer.unref();
      this.waiters.add(check);
      res.once('close', hungUp);
    });
  }

  // -------------------------------------------------------------------------------------------
  // Time-driven transitions

  advance(now: number): void {
    for (const op of Object.values(this.state.operations)) {
      if (op.done) continue;
      if (op.kind === 'deploy') this.advanceDeploy(op, now);
      else if (op.kind === 'deployModel') this.advanceDeployModel(op, now);
      else if (op.kind === 'mutateDeployedModel') this.advanceMutate(op, now);
      else if (now >= op.doneAt) {
        const complete = this.completions.get(op.kind);
        if (complete) complete(op, now);
        else this.finishSimpleOperation(op, now);
      }
    }
    for (const endpoint of Object.values(this.state.endpoints))
      for (const deployed of endpoint.deployedModels)
        if (deployed.stuck) this.logRestarts(endpoint, deployed, now);
    for (const op of Object.values(this.state.computeOperations)) {
      if (op.done || now < op.doneAt) continue;
      const apply = op.apply;
      if (op.failure) {
        // DONE with an error: nothing changes.
      } else if (apply.kind === 'createAddress') {
        this.state.addresses[apply.record.key] = apply.record;
        this.countCreation(projectNumberFor(apply.record.projectId), 'address');
      } else if (apply.kind === 'createForwardingRule') {
        this.state.forwardingRules[apply.record.key] = apply.record;
        this.countCreation(projectNumberFor(apply.record.projectId), 'forwardingRule');
      } else if (apply.kind === 'deleteAddress') {
        delete this.state.addresses[apply.key];
      } else {
        delete this.state.forwardingRules[apply.key];
      }
      op.done = true;
      this.markDirty();
    }
  }

  private advanceDeploy(op: VertexOperationRecord, now: number): void {
    const work = op.deploy!;
    const inspection = work.inspection;
    if (!inspection) return;
    const cancelledEnd = work.createsAfterCancel?.endsAt;
    if (cancelledEnd !== undefined) {
      // A best-effort cancel: no deployed model, but what the import makes still appears.
      if (now < cancelledEnd) return;
      if (!work.created && (inspection.ok || inspection.stage !== 'import'))
        this.createDeployResources(op, now);
      return this.finish(op, now, { error: cancelledStatus() });
    }
    if (!work.created) {
      if (now < work.importAt) return;
      if (!inspection.ok && inspection.stage === 'import')
        return this.finish(op, now, { error: inspection.error });
      this.createDeployResources(op, now);
    }
    if (now < op.doneAt) return;
    if (work.fault === 'quotaExhausted')
      return this.finish(op, now, { error: quotaError(op, work.dedicatedResources) });
    if (!inspection.ok && inspection.stage === 'import')
      return this.finish(op, now, { error: inspection.error });
    const modelName = `projects/${op.project}/locations/${op.location}/models/${work.modelId}`;
    const model = this.state.models[modelName];
    // What the folder holds is the Model's, whatever this deployment's machine and flags make of it.
    if (model && inspection.ok) model.served = inspection.served;
    const { outcome, lines } = serveAttempt({
      project: op.project,
      location: op.location,
      endpointId: work.endpointId,
      deployedModelId: work.deployedModelId,
      start: work.importAt,
      end: op.doneAt,
      replicas: work.initialReplicas,
      machineSpec: work.dedicatedResources.machineSpec as MachineSpecJson,
      ...(work.containerSpec ? { containerSpec: work.containerSpec } : {}),
      inspection,
      ...(work.fault ? { fault: work.fault } : {}),
    });
    this.logs.write(lines, now);
    if (outcome.kind === 'failed') return this.finish(op, now, { error: outcome.error });
    const endpoint = this.state.endpoints[endpointName(op, work.endpointId)];
    if (!endpoint) {
      return this.finish(op, now, {
        error: {
          code: 5,
          message: `Endpoint ${endpointName(op, work.endpointId)} was deleted during deployment.`,
        },
      });
    }
    endpoint.deployedModels.push({
      id: work.deployedModelId,
      model: modelName,
      displayName: work.modelDisplayName,
      createTime: now,
      dedicatedResources: work.dedicatedResources,
      initialReplicas: work.initialReplicas,
      rampStart: now,
      rampMs: this.timing(op.project).replicaRampMs,
      neverReady: outcome.kind === 'stuck',
      ...(outcome.kind === 'stuck' ? { stuck: outcome.stuck } : {}),
      ...(work.systemLabels ? { systemLabels: work.systemLabels } : {}),
      ...(work.fastTryoutEnabled ? { fastTryoutEnabled: true } : {}),
      served: outcome.served,
    });
    endpoint.trafficSplit = { [work.deployedModelId]: 100 };
    if (endpoint.psc) endpoint.psc.serviceAttachment = serviceAttachmentFor(endpoint);
    touch(endpoint, now);
    if (model) touch(model, now);
    this.countCreation(op.project, 'deployedModel');
    this.finish(op, now, {
      response: {
        '@type': `${V1BETA1_TYPE}.DeployResponse`,
        endpoint: endpoint.name,
        model: modelName,
      },
    });
  }

  /** Logs the restarts of a container that never gets ready, up to `now` (see container.ts). */
  private logRestarts(endpoint: EndpointRecord, deployed: DeployedModelRecord, now: number): void {
    const stuck = deployed.stuck!;
    const before = stuck.logged;
    const model = this.state.models[deployed.model];
    const lines = restartLines(
      {
        project: endpoint.project,
        location: endpoint.location,
        endpointId: endpoint.id,
        deployedModelId: deployed.id,
        machineSpec: deployed.dedicatedResources.machineSpec as MachineSpecJson,
        ...(model?.containerSpec ? { containerSpec: model.containerSpec } : {}),
        inspection: { ok: true, served: deployed.served },
      },
      stuck,
      this.timing(endpoint.project).restartMs,
      now,
    );
    if (lines.length > 0) this.logs.write(lines, now);
    if (stuck.logged !== before) this.markDirty();
  }

  private createDeployResources(op: VertexOperationRecord, now: number): void {
    const work = op.deploy!;
    const modelName = `projects/${op.project}/locations/${op.location}/models/${work.modelId}`;
    const name = endpointName(op, work.endpointId);
    this.state.models[modelName] = {
      name: modelName,
      project: op.project,
      location: op.location,
      id: work.modelId,
      displayName: work.modelDisplayName,
      labels: {},
      createTime: now,
      updateTime: now,
      revision: 1,
      artifactUri: work.gcsUri,
      ...(work.containerSpec ? { containerSpec: work.containerSpec } : {}),
    };
    this.state.endpoints[name] = {
      name,
      project: op.project,
      location: op.location,
      id: work.endpointId,
      displayName: work.endpointDisplayName,
      labels: {},
      createTime: now,
      updateTime: now,
      revision: 1,
      dedicatedEndpointEnabled: work.dedicatedEndpointEnabled,
      ...(work.psc ? { psc: { ...work.psc } } : {}),
      deployedModels: [],
      trafficSplit: {},
    };
    this.countCreation(op.project, 'model');
    this.countCreation(op.project, 'endpoint');
    work.created = true;
    op.updateTime = now;
    this.markDirty();
  }

  /**
   * At `doneAt` the model joins the endpoint (its replicas ramp up from 0) and a non-empty
   * requested split replaces the endpoint's, "0" becoming the new id.
   */
  private advanceDeployModel(op: VertexOperationRecord, now: number): void {
    if (now < op.doneAt) return;
    const work = op.deployModel!;
    const endpoint = op.target ? this.state.endpoints[op.target] : undefined;
    const model = this.state.models[work.model];
    const fail = (code: number, message: string) => this.finish(op, now, { error: { code, message } });
    if (!endpoint) return fail(5, `Endpoint ${op.target} was deleted during deployment.`);
    if (work.fault === 'quotaExhausted')
      return this.finish(op, now, { error: quotaError(op, work.dedicatedResources) });
    if (!model) return fail(5, `Model ${work.model} was deleted during deployment.`);
    if (!model.served) {
      return fail(
        9,
        `Model ${model.name} cannot be served: its serving container never started (the :deploy that created it failed). Deploy a model whose :deploy succeeded.`,
      );
    }
    const split = work.trafficSplit;
    const gone = Object.keys(split ?? {}).filter(
      (id) => id !== '0' && !endpoint.deployedModels.some((m) => m.id === id),
    );
    if (gone.length > 0) {
      return fail(
        9,
        `traffic_split names deployed model(s) [${gone.join(', ')}] that were undeployed from ${endpoint.name} during deployment; nothing was deployed. Retry with a split of the models deployed now.`,
      );
    }
    const { outcome, lines } = serveAttempt({
      project: op.project,
      location: op.location,
      endpointId: endpoint.id,
      deployedModelId: work.deployedModelId,
      start: op.createTime,
      end: op.doneAt,
      replicas: work.initialReplicas,
      machineSpec: work.dedicatedResources.machineSpec as MachineSpecJson,
      ...(model.containerSpec ? { containerSpec: model.containerSpec } : {}),
      inspection: { ok: true, served: model.served },
      ...(work.fault ? { fault: work.fault } : {}),
    });
    this.logs.write(lines, now);
    if (outcome.kind === 'failed') return this.finish(op, now, { error: outcome.error });
    const deployed: DeployedModelRecord = {
      id: work.deployedModelId,
      model: work.model,
      displayName: work.displayName || model.displayName,
      createTime: now,
      dedicatedResources: work.dedicatedResources,
      initialReplicas: work.initialReplicas,
      rampStart: now,
      rampMs: this.timing(op.project).replicaRampMs,
      neverReady: outcome.kind === 'stuck',
      ...(outcome.kind === 'stuck' ? { stuck: outcome.stuck } : {}),
      ...(work.enableContainerLogging ? { enableContainerLogging: true } : {}),
      ...(work.enableAccessLogging ? { enableAccessLogging: true } : {}),
      served: outcome.served,
    };
    endpoint.deployedModels.push(deployed);
    if (split) {
      endpoint.trafficSplit = Object.fromEntries(
        Object.entries(split).map(([id, v]) => [id === '0' ? deployed.id : id, v]),
      );
    }
    if (endpoint.psc) endpoint.psc.serviceAttachment ??= serviceAttachmentFor(endpoint);
    touch(endpoint, now);
    this.countCreation(op.project, 'deployedModel');
    this.finish(op, now, {
      response: {
        '@type': `${V1BETA1_TYPE}.DeployModelResponse`,
        deployedModel: deployedModelJson(endpoint, deployed, now),
      },
    });
  }

  /**
   * At `doneAt` the mutation applies: surplus replicas go at once, new ones ramp over
   * `replicaRampMs`. The operation ends once `required_replica_count` (default: the new minimum)
   * replicas are available, as the proto documents for mutations.
   */
  private advanceMutate(op: VertexOperationRecord, now: number): void {
    if (now < op.doneAt) return;
    const work = op.mutate!;
    const endpoint = op.target ? this.state.endpoints[op.target] : undefined;
    const deployed = endpoint?.deployedModels.find((m) => m.id === work.deployedModelId);
    if (!endpoint || !deployed) {
      return this.finish(op, now, {
        error: {
          code: 5,
          message: `Deployed model ${work.deployedModelId} was undeployed from ${op.target} before its mutation completed.`,
        },
      });
    }
    if (work.waitFor === undefined) {
      const available = EmulatorCore.availableReplicas(deployed, now);
      const min = Number(work.dedicatedResources.minReplicaCount ?? 0);
      // Scale-to-zero (min 0) keeps the replicas it runs.
      const target = min > 0 ? min : deployed.initialReplicas;
      const required = Number(work.dedicatedResources.requiredReplicaCount ?? 0);
      deployed.dedicatedResources = work.dedicatedResources;
      if (work.enableContainerLogging === true) deployed.enableContainerLogging = true;
      else if (work.enableContainerLogging === false) delete deployed.enableContainerLogging;
      deployed.rampFrom = Math.min(available, target);
      deployed.initialReplicas = target;
      deployed.rampStart = now;
      deployed.rampMs = this.timing(op.project).replicaRampMs;
      work.waitFor = required > 0 ? Math.min(required, target) : target;
      touch(endpoint, now);
      op.updateTime = now;
      this.markDirty();
    }
    if (EmulatorCore.availableReplicas(deployed, now) < work.waitFor) return;
    this.finish(op, now, {
      response: {
        '@type': `${V1BETA1_TYPE}.MutateDeployedModelResponse`,
        deployedModel: deployedModelJson(endpoint, deployed, now),
      },
    });
  }

  private finishSimpleOperation(op: VertexOperationRecord, now: number): void {
    if (op.kind === 'undeploy') {
      const endpoint = op.target ? this.state.endpoints[op.target] : undefined;
      const undeploy = op.undeploy!;
      if (endpoint) {
        endpoint.deployedModels = endpoint.deployedModels.filter((m) => m.id !== undeploy.deployedModelId);
        if (undeploy.trafficSplit) endpoint.trafficSplit = undeploy.trafficSplit;
        else delete endpoint.trafficSplit[undeploy.deployedModelId];
        if (endpoint.deployedModels.length === 0) endpoint.trafficSplit = {};
        touch(endpoint, now);
      }
      return this.finish(op, now, { response: { '@type': `${V1BETA1_TYPE}.UndeployModelResponse` } });
    }
    this.finish(op, now, { response: { '@type': 'type.googleapis.com/google.protobuf.Empty' } });
  }

  finish(
    op: VertexOperationRecord,
    now: number,
    outcome: { error: RpcStatus } | { response: Record<string, unknown> },
  ): void {
    op.done = true;
    op.updateTime = now;
    if ('error' in outcome) op.error = outcome.error;
    else op.response = outcome.response;
    this.markDirty();
  }

  // -------------------------------------------------------------------------------------------
  // The serving stack reading a model folder

  startInspection(op: VertexOperationRecord): void {
    const work = op.deploy!;
    const task = inspectModelFolder(openModelStore(work.gcsUri, { storage: this.storage }), {
      gcsUri: work.gcsUri,
      projectNumber: op.project,
      endpointId: work.endpointId,
      location: op.location,
    })
      .catch((err: unknown): ServingInspection => {
        this.log(
          `model inspection of ${work.gcsUri} failed unexpectedly: ${(err as Error).stack ?? String(err)}`,
        );
        return { ok: false, stage: 'serving', error: { code: 13, message: 'Internal error encountered.' } };
      })
      .then((inspection) => {
        this.inspections.delete(op.name);
        const current = this.state.operations[op.name];
        if (this.closed || !current || current.done || !current.deploy) return;
        current.deploy.inspection = inspection;
        this.markDirty();
        this.scheduleFlush();
      });
    this.inspections.set(op.name, task);
  }

  /** Waits for in-flight model inspections (used on close). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.inspections.values()]);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.dueTimer);
    this.dueTimer = undefined;
    this.flush();
  }

  // -------------------------------------------------------------------------------------------
  // Lookups shared by handlers

  endpoint(name: string): EndpointRecord {
    const endpoint = this.state.endpoints[name];
    if (!endpoint) throw new ApiError('NOT_FOUND', `Endpoint \`${name}\` not found.`);
    return endpoint;
  }

  /** The first millisecond at which `count` replicas of a deployed model are available; undefined: never. */
  static replicasReadyAt(
    model: Pick<DeployedModelRecord, 'initialReplicas' | 'rampFrom' | 'rampStart' | 'rampMs' | 'neverReady'>,
    count: number,
  ): number | undefined {
    if (model.neverReady || count > model.initialReplicas) return undefined;
    const from = model.rampFrom ?? 0;
    if (count <= from || model.rampMs === 0) return model.rampStart;
    let time = model.rampStart + Math.ceil((model.rampMs * (count - from)) / (model.initialReplicas - from));
    // The ramp's floating-point floor may reach the count a millisecond later than the exact ratio.
    while (EmulatorCore.availableReplicas(model, time) < count) time += 1;
    return time;
  }

  /** Available replicas of a deployed model at `now` (they come up one by one over the ramp). */
  static availableReplicas(
    model: Pick<DeployedModelRecord, 'initialReplicas' | 'rampFrom' | 'rampStart' | 'rampMs' | 'neverReady'>,
    now: number,
  ): number {
    if (model.neverReady) return 0;
    const from = model.rampFrom ?? 0;
    if (now < model.rampStart) return from;
    if (model.rampMs === 0) return model.initialReplicas;
    const ready =
      from + Math.floor(((now - model.rampStart) / model.rampMs) * (model.initialReplicas - from));
    return Math.min(model.initialReplicas, ready);
  }
}

/** A `DeployedModel` as Vertex renders it (inside an Endpoint and in a MutateDeployedModelResponse). */
export function deployedModelJson(
  endpoint: EndpointRecord,
  model: DeployedModelRecord,
  now: number,
): Record<string, unknown> {
  const available = EmulatorCore.availableReplicas(model, now);
  const from = model.rampFrom ?? 0;
  // When `available` last changed: the ramp step that reached it, the mutation, or the creation.
  const lastChange =
    available > from
      ? model.rampStart + (model.rampMs * (available - from)) / (model.initialReplicas - from)
      : from > 0
        ? model.rampStart
        : model.createTime;
  return {
    id: model.id,
    model: model.model,
    modelVersionId: '1',
    displayName: model.displayName,
    createTime: timestamp(model.createTime),
    dedicatedResources: model.dedicatedResources,
    ...(endpoint.psc?.serviceAttachment
      ? { privateEndpoints: { serviceAttachment: endpoint.psc.serviceAttachment } }
      : {}),
    ...(model.enableContainerLogging ? { enableContainerLogging: true } : {}),
    ...(model.enableAccessLogging ? { enableAccessLogging: true } : {}),
    status: {
      lastUpdateTime: timestamp(Math.floor(lastChange)),
      ...(available > 0 ? { availableReplicaCount: available } : {}),
    },
    ...(model.systemLabels ? { systemLabels: model.systemLabels } : {}),
    ...(model.fastTryoutEnabled ? { fasterDeploymentConfig: { fastTryoutEnabled: true } } : {}),
  };
}

/** The `error` of a cancelled operation. */
export function cancelledStatus(): RpcStatus {
  return { code: 1, message: 'Operation was cancelled.' };
}

export function endpointName(op: { project: string; location: string }, endpointId: string): string {
  return `projects/${op.project}/locations/${op.location}/endpoints/${endpointId}`;
}

/** Service attachments live in a Google-owned tenant project, one per PSC endpoint. */
export function serviceAttachmentFor(endpoint: EndpointRecord): string {
  const tenant = `${projectNumberFor(endpoint.name).slice(0, 10)}-tp`;
  return `projects/a${tenant}/regions/${endpoint.location}/serviceAttachments/gkedpm-${endpoint.id.slice(0, 40)}`;
}
