// How a TypeScript comment reads in the generated Lua: shared by the TypeScriptToLua plugin that
// writes the comments (lua-plugin.ts) and the check that they all arrived (check-lua.ts).
import ts from "typescript";

/**
 * The Lua comment lines for one TypeScript comment, without the leading "--" that TypeScriptToLua's
 * printer adds: a doc comment becomes an LDoc block ("--- first line", "-- next lines"), any other
 * comment keeps its lines as "-- text". Blank lines stay blank ("--", no trailing space).
 */
export function luaCommentLines(comment: string): string[] {
  const doc = comment.startsWith("/**");
  let lines: string[];
  if (comment.startsWith("//")) {
    lines = [comment.slice(2)];
  } else {
    lines = comment
      .replace(/^\/\*\*?/, "")
      .replace(/\*\/$/, "")
      .split("\n")
      .map((line) => line.replace(/^\s*\* ?/, " ").replace(/^\s*\*$/, ""));
    while (lines.length > 0 && lines[0].trim() === "") lines.shift();
    while (lines.length > 0 && lines[lines.length - 1].trim() === "") lines.pop();
  }
  return lines.map((line, index) => {
    const text = line.trimEnd();
    const body = text === "" ? "" : " " + text.replace(/^ /, "");
    return doc && index === 0 ? "-" + body : body;
  });
}

export interface SourceComment {
  pos: number;
  line: number;
  text: string;
}

/**
 * Every comment in a TypeScript source, in order, with the line it starts on (1-based). Read with
 * the scanner, so that no comment escapes (one before a closing brace belongs to no statement).
 * The sources in src/ hold no template literals or regular expressions, which need the parser.
 */
export function sourceComments(text: string): SourceComment[] {
  const scanner = ts.createScanner(ts.ScriptTarget.Latest, false, ts.LanguageVariant.Standard, text);
  const found: SourceComment[] = [];
  for (let kind = scanner.scan(); kind !== ts.SyntaxKind.EndOfFileToken; kind = scanner.scan()) {
    if (kind === ts.SyntaxKind.SingleLineCommentTrivia || kind === ts.SyntaxKind.MultiLineCommentTrivia) {
      const start = scanner.getTokenStart();
      found.push({ pos: start, line: text.slice(0, start).split("\n").length, text: scanner.getTokenText() });
    }
  }
  return found;
}
