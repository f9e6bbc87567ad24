/**
 * The parts of LuaJIT's FFI library this project calls.
 * Reference: https://luajit.org/ext_ffi_api.html
 */
/** @noSelfInFile */

declare module "ffi" {
  /** A C type object made by ffi.typeof. */
  export interface CType {
    readonly __ctype: unique symbol;
  }

  export function cdef(declarations: string): void;
  export function string(ptr: CData, len?: number): string;
  export function cast(ct: CType | string, value: CData): CData;
  export function gc(value: CData, finalizer: ((this: void, value: CData) => void) | undefined): CData;
  /** Fills `len` bytes at `dst` with the byte `c` (default 0). */
  export function fill(dst: CData, len: number, c?: number): void;
  export function sizeof(ct: CType | string): number;
  export function istype(ct: CType | string, value: unknown): boolean;

  /**
   * ffi.C, the default C namespace. Its members are the C functions declared with cdef: a module
   * casts it to the type of what it declared (see resty/mtls_pool/include/libcrypto.ts).
   */
  export interface Namespace {}

  /** A cdata array, indexed from 0 as in C (get/set compile to plain Lua indexing). */
  export type CArray<T> = CData & LuaTable<number, T>;
  export const C: Namespace;

  // ffi.new and ffi.typeof, whose names are reserved words in TypeScript.
  function new_(ct: CType | string, nelem?: number): CData;
  function typeof_(ct: string): CType;
  export { new_ as new, typeof_ as typeof };
}
