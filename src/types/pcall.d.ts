/**
 * The type of pcall applied to a method with two results, called as pcall(obj.method, obj, ...):
 * lua-types' pcall types the results as one value, which TypeScriptToLua would then pack into a
 * table. Use as `const pcall2 = pcall as unknown as PcallMethodOfTwo;` (a plain local alias).
 */
declare type PcallMethodOfTwo = <S, A extends unknown[], R1, R2>(
  this: void,
  method: (this: S, ...args: A) => LuaMultiReturn<[R1, R2]>,
  self: S,
  ...args: A
) => LuaMultiReturn<[true, R1, R2] | [false, string, undefined]>;
