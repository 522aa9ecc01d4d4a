import { badRequest } from './errors';

/**
 * Offset paging of the List calls whose results are a stable ordered list (Vertex endpoints and
 * models, Cloud Quotas infos): `pageSize` (default 100, at most 1000), and a `pageToken` that is
 * only valid with the same filter.
 */

interface PageToken {
  offset: number;
  filter: string;
}

export function paginate<T>(
  items: T[],
  query: Record<string, unknown>,
): { page: T[]; nextPageToken?: string } {
  const filter = typeof query.filter === 'string' ? query.filter : '';
  const requested = typeof query.pageSize === 'number' && query.pageSize > 0 ? query.pageSize : 100;
  const pageSize = Math.min(requested, 1000);
  let offset = 0;
  if (typeof query.pageToken === 'string' && query.pageToken !== '') {
    let token: PageToken | undefined;
    try {
      token = JSON.parse(Buffer.from(query.pageToken, 'base64url').toString('utf8')) as PageToken;
    } catch {
      token = undefined;
    }
    if (!token || typeof token.offset !== 'number' || token.filter !== filter) {
      throw badRequest([
        {
          field: 'page_token',
          description: 'Invalid page_token: it does not come from a previous list call with the same filter.',
        },
      ]);
    }
    offset = token.offset;
  }
  const page = items.slice(offset, offset + pageSize);
  const next = offset + pageSize;
  return next < items.length
    ? { page, nextPageToken: Buffer.from(JSON.stringify({ offset: next, filter })).toString('base64url') }
    : { page };
}
