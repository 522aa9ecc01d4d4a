/**
 * Which storage events start deployments: plain settings. `garden-deploy serve` takes them from its
 * options table (src/http/config.ts: flags, variables, the one schema that checks them); a library
 * caller gives them directly, with `eventsConfig()` for the defaults.
 */

export const DEFAULT_MARKER_NAME = 'garden-deploy.yaml';
export const DEFAULT_STATUS_NAME = 'garden-deploy.status.json';
/** Largest marker read (a spec's bound). */
export const DEFAULT_MAX_MARKER_BYTES = 64 * 1024;

export interface EventsConfig {
  /** Buckets whose markers count; empty: any bucket that notifies us. */
  buckets: string[];
  /** Object-name prefix of the watched folders: '' for the whole bucket, else ending in '/'. */
  prefix: string;
  /** The marker's object name inside a model folder, written last. */
  markerName: string;
  /** The status object written next to the marker (never the marker's name). */
  statusName: string;
  /** Largest marker read, in bytes. */
  maxMarkerBytes: number;
}

/** The defaults (any bucket, the whole bucket, the default names), with `settings` over them. */
export function eventsConfig(settings: Partial<EventsConfig> = {}): EventsConfig {
  return {
    buckets: [],
    prefix: '',
    markerName: DEFAULT_MARKER_NAME,
    statusName: DEFAULT_STATUS_NAME,
    maxMarkerBytes: DEFAULT_MAX_MARKER_BYTES,
    ...settings,
  };
}
