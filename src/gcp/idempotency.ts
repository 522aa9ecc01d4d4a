import { isGcpApiError } from './errors';
import type { CallOptions } from './http';
import { InvalidRequestError } from './input';
import { type Labels, labelsFilter } from './labels';
import type { LocationRef } from './names';
import type { Endpoint, Model } from './schemas';
import type { VertexClient } from './vertex';

/** The create call found the resource already there (Vertex 409 ALREADY_EXISTS, Compute `alreadyExists`). */
export function isAlreadyExists(err: unknown): boolean {
  return isGcpApiError(err) && err.status === 'ALREADY_EXISTS';
}

export function isNotFound(err: unknown): boolean {
  return isGcpApiError(err) && err.status === 'NOT_FOUND';
}

/**
 * Runs a delete (or undeploy) and treats NOT_FOUND as success: the resource is gone either way.
 * Returns the call's result, or `undefined` when there was nothing to delete.
 */
export async function deleteIfExists<T>(remove: () => Promise<T>): Promise<T | undefined> {
  try {
    return await remove();
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Bound on pages followed when listing by labels (1,000 resources at 100 a page). */
const MAX_PAGES = 10;
const PAGE_SIZE = 100;

/** Every endpoint in the location carrying all of `labels`. */
export async function findEndpointsByLabels(
  vertex: VertexClient,
  where: LocationRef,
  labels: Labels,
  options: CallOptions = {},
): Promise<Endpoint[]> {
  const filter = labelsFilter(labels);
  return collectPages(`endpoints matching ${filter}`, async (pageToken) => {
    const page = await vertex.listEndpoints({ ...where, filter, pageSize: PAGE_SIZE, pageToken }, options);
    return { items: page.endpoints, nextPageToken: page.nextPageToken };
  });
}

/** Every model in the location carrying all of `labels`. */
export async function findModelsByLabels(
  vertex: VertexClient,
  where: LocationRef,
  labels: Labels,
  options: CallOptions = {},
): Promise<Model[]> {
  const filter = labelsFilter(labels);
  return collectPages(`models matching ${filter}`, async (pageToken) => {
    const page = await vertex.listModels({ ...where, filter, pageSize: PAGE_SIZE, pageToken }, options);
    return { items: page.models, nextPageToken: page.nextPageToken };
  });
}

async function collectPages<T>(
  what: string,
  fetchPage: (pageToken: string | undefined) => Promise<{ items: T[]; nextPageToken?: string }>,
): Promise<T[]> {
  const found: T[] = [];
  let pageToken: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const res = await fetchPage(pageToken);
    found.push(...res.items);
    pageToken = res.nextPageToken;
    if (!pageToken) return found;
  }
  throw new InvalidRequestError(`more than ${MAX_PAGES * PAGE_SIZE} ${what}; use more specific labels`);
}
