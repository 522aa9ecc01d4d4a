export * from './arithmetic';
export * from './config';
export * from './families';
export * from './tensors';
