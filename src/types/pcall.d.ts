/**
 * The type of pcall applied to a function with two results: lua-types' pcall types the results
 * as one value, which TypeScriptToLua would then pack into a table. Use as
 * `const pcall2 = pcall as unknown as PcallOfTwo;` (a plain local alias in the Lua).
 */
declare type PcallOfTwo = <A extends unknown[], R1, R2>(
  this: void,
  f: (this: void, ...args: A) => LuaMultiReturn<[R1, R2]>,
  ...args: A
) => LuaMultiReturn<[true, R1, R2] | [false, string, undefined]>;
