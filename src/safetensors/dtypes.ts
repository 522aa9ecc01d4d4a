/**
 * safetensors dtype strings and their widths in bits (huggingface/safetensors `Dtype`).
 * Sub-byte types (F4, F6_*) exist: byte counts must be computed from bits.
 */
export const DTYPE_BITS = {
  BOOL: 8,
  U8: 8,
  I8: 8,
  F8_E4M3: 8,
  F8_E5M2: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  I64: 64,
  U64: 64,
  F64: 64,
  C64: 64,
} as const;

export type Dtype = keyof typeof DTYPE_BITS;

export function isDtype(value: string): value is Dtype {
  return Object.prototype.hasOwnProperty.call(DTYPE_BITS, value);
}

/** Low-precision dtypes that signal a quantized checkpoint when used for large weights. */
export const QUANTIZED_DTYPES: ReadonlySet<Dtype> = new Set<Dtype>([
  'I8',
  'U8',
  'I32',
  'F8_E4M3',
  'F8_E5M2',
  'F8_E8M0',
  'F8_E4M3FNUZ',
  'F8_E5M2FNUZ',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
]);
