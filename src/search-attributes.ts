import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * Custom search attributes that make deployments filterable in the Temporal UI and `list`.
 * Registered by the local stack (`--search-attribute`), docker-compose and the test harness;
 * a real cluster needs them created once (README: "Configuration").
 * Keyword only: SQLite visibility allows 10 Keyword attributes per namespace.
 */
export const DeployStage = defineSearchAttributeKey('DeployStage', 'KEYWORD');
export const DeploymentName = defineSearchAttributeKey('DeploymentName', 'KEYWORD');
export const ModelUri = defineSearchAttributeKey('ModelUri', 'KEYWORD');
export const GcpProject = defineSearchAttributeKey('GcpProject', 'KEYWORD');
export const GcpRegion = defineSearchAttributeKey('GcpRegion', 'KEYWORD');
export const EndpointId = defineSearchAttributeKey('EndpointId', 'KEYWORD');

export const SEARCH_ATTRIBUTES = [DeployStage, DeploymentName, ModelUri, GcpProject, GcpRegion, EndpointId];

/** `Name=Type` pairs in the form `temporal server start-dev --search-attribute` takes. */
export function searchAttributeFlags(): string[] {
  return SEARCH_ATTRIBUTES.map((key) => `${key.name}=Keyword`);
}
