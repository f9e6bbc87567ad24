/** @noSelfInFile */
declare module "jit" {
  export const version: string;
  export const version_num: number;
}
