import { type DeploymentSpec, parseDeploymentSpec, parseDeploymentSpecDocument } from '../spec';
import type { EventsConfig } from './config';

/**
 * The marker contract: `<prefix><folder>/<markerName>` (default `garden-deploy.yaml`), written
 * last, holds the deployment spec of the model folder it sits in. Nothing else under the prefix
 * (weights, the status object) triggers anything.
 */

export interface Marker {
  bucket: string;
  /** The marker's object name. */
  object: string;
  /** The model folder's object-name prefix, ending in '/'. */
  folder: string;
  /** `gs://bucket/folder/`: the model URI when the spec names none. */
  folderUri: string;
  /** The status object's name, next to the marker. */
  statusObject: string;
}

/** The marker this object is, or undefined (another bucket, outside the prefix, another file). */
export function markerOf(bucket: string, object: string, config: EventsConfig): Marker | undefined {
  if (config.buckets.length > 0 && !config.buckets.includes(bucket)) return undefined;
  if (!object.startsWith(config.prefix)) return undefined;
  const suffix = `/${config.markerName}`;
  if (!object.endsWith(suffix)) return undefined;
  const folder = object.slice(0, object.length - config.markerName.length);
  // A marker at the prefix itself names no model folder.
  if (folder.length <= config.prefix.length) return undefined;
  if (folder.split('/').some((segment, i, all) => (segment === '' && i < all.length - 1) || segment === '..'))
    return undefined;
  return {
    bucket,
    object,
    folder,
    folderUri: `gs://${bucket}/${folder}`,
    statusObject: `${folder}${config.statusName}`,
  };
}

/**
 * The marker's spec, parsed by the CLI's loader and schema (the same issues, with field paths); a
 * spec without `model.uri` deploys the marker's own folder. Throws `InvalidSpecError`.
 */
export function specFromMarker(text: string, marker: Marker): DeploymentSpec {
  const source = `gs://${marker.bucket}/${marker.object}`;
  const document = parseDeploymentSpecDocument(text, source);
  return parseDeploymentSpec(withDefaultModel(document, marker.folderUri), source);
}

function withDefaultModel(document: unknown, folderUri: string): unknown {
  if (!document || typeof document !== 'object' || Array.isArray(document)) return document;
  const spec = document as Record<string, unknown>;
  if (spec.model === undefined) return { ...spec, model: { uri: folderUri } };
  const model = spec.model;
  if (model && typeof model === 'object' && !Array.isArray(model) && !('uri' in model))
    return { ...spec, model: { ...model, uri: folderUri } };
  return document;
}
