import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { executionInfoFromRaw } from '@temporalio/client/lib/helpers';

/**
 * The runs a visibility `query` matches, without their memo. A deployment started with payload
 * encryption has an encrypted memo (the spec digest) that a client without the keys cannot
 * decode, and listing or resolving by name needs none of it: the SDK's `workflow.list()` would
 * fail the whole listing on that one run.
 */
export async function* listRuns(
  client: Client,
  query: string,
  pageSize?: number,
): AsyncGenerator<WorkflowExecutionInfo> {
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await client.workflowService.listWorkflowExecutions({
      namespace: client.options.namespace,
      query,
      ...(pageSize ? { pageSize } : {}),
      ...(nextPageToken ? { nextPageToken } : {}),
    });
    for (const raw of page.executions) {
      // The raw message with no memo; its other fields (defaults live on its prototype) read through.
      const withoutMemo = Object.assign(Object.create(raw) as typeof raw, { memo: null });
      yield await executionInfoFromRaw(
        withoutMemo,
        client.options.loadedDataConverter,
        raw,
        client.options.namespace,
      );
    }
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
}
