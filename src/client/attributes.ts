import type { TypedSearchAttributes } from '@temporalio/common';
import {
  DeployStage,
  DeploymentName,
  EndpointId,
  GcpProject,
  GcpRegion,
  ModelUri,
} from '../search-attributes';
import { DEPLOY_STAGES, type DeployStage as Stage } from '../workflows/types';

/**
 * What a workflow's search attributes say about its deployment, read the same way by list and
 * status; a stage this version does not know is left out.
 */
export function deploymentAttributes(attributes: TypedSearchAttributes): {
  deployment: string | undefined;
  project: string | undefined;
  region: string | undefined;
  modelUri: string | undefined;
  endpointId: string | undefined;
  stage: Stage | undefined;
} {
  const stage = attributes.get(DeployStage);
  return {
    deployment: attributes.get(DeploymentName),
    project: attributes.get(GcpProject),
    region: attributes.get(GcpRegion),
    modelUri: attributes.get(ModelUri),
    endpointId: attributes.get(EndpointId),
    stage: (DEPLOY_STAGES as readonly string[]).includes(stage ?? '') ? (stage as Stage) : undefined,
  };
}
