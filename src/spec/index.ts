export * from './deployment-spec';
export * from './duration';
export * from './duration-field';
export * from './ids';
export * from './load';
export * from './rollout';
export * from './serving';
