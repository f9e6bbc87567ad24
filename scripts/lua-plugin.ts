// TypeScriptToLua plugin that makes dist-lua/ read like hand-written OpenResty Lua:
// - every comment reaches the Lua, above the statement it explains or after it on its line, as
//   in the source (TypeScriptToLua keeps only the doc comments of declarations), and a module's
//   header comment opens its Lua file;
// - string concatenations and and/or chains print flat (`a .. b .. c`, not `(a .. b) .. c`), and
//   long ones break before an operator; argument lists and tables stay on one line when they fit;
// - the module table is `_M`, discarded loop values are `_` and a required module's table is
//   named after the module, as a Lua programmer names them.
import ts from "typescript";
import tstl from "typescript-to-lua";
import { luaCommentLines } from "./lua-comments.js";

type Plugin = tstl.Plugin;
type Statement = tstl.Statement;
type Printed = ReturnType<tstl.LuaPrinter["printExpression"]>;

/** LuaPrinter's members that TypeScriptToLua declares private but a printer subclass needs. */
interface PrinterInternals {
  printExpressionInParenthesesIfNeeded(expression: tstl.Expression, minPrecedenceToOmit?: number): Printed;
}

// Operators printed as flat chains (`a .. b .. c`, `a and b and c`), with their precedence in
// LuaPrinter's table. Each is associative for the values it joins here (strings and numbers for
// `..`), so dropping TypeScriptToLua's grouping parentheses changes no result.
const CHAINS = new Map<tstl.BinaryOperator, number>([
  [tstl.SyntaxKind.OrOperator, 1],
  [tstl.SyntaxKind.AndOperator, 2],
  [tstl.SyntaxKind.ConcatOperator, 8],
]);

// An operator chain or a list longer than this (indentation included) is wrapped. The printer
// does not know where on its line an expression starts, so it assumes START_COLUMN after the
// indentation: luacheck's 120-character rule has the last word.
const WRAP_AT = 110;
const START_COLUMN = 20;

/** The TypeScript statement kinds whose comments are carried onto their Lua statements. */
const STATEMENT_KINDS = [
  ts.SyntaxKind.VariableStatement,
  ts.SyntaxKind.FunctionDeclaration,
  ts.SyntaxKind.ExpressionStatement,
  ts.SyntaxKind.IfStatement,
  ts.SyntaxKind.ForStatement,
  ts.SyntaxKind.ForOfStatement,
  ts.SyntaxKind.ForInStatement,
  ts.SyntaxKind.WhileStatement,
  ts.SyntaxKind.DoStatement,
  ts.SyntaxKind.ReturnStatement,
  ts.SyntaxKind.BreakStatement,
  ts.SyntaxKind.ContinueStatement,
  ts.SyntaxKind.ImportDeclaration,
  ts.SyntaxKind.ImportEqualsDeclaration,
  ts.SyntaxKind.ExportDeclaration,
  ts.SyntaxKind.ExportAssignment,
] as const;

/** The comment that opens a source file (before its first statement and its imports), if any. */
function headerRange(file: ts.SourceFile): ts.CommentRange | undefined {
  const [first] = ts.getLeadingCommentRanges(file.text, 0) ?? [];
  return first !== undefined && file.text.slice(first.pos, first.pos + 3) === "/**" ? first : undefined;
}

/** The Lua comment lines for a statement: those above it, and those after it on its line. */
function commentsOf(node: ts.Node): { leading: string[]; trailing: string[] } {
  // Statements TypeScriptToLua made up itself (a for loop's increment) have no source text.
  const file = node.pos < 0 ? undefined : node.getSourceFile();
  if (file === undefined) {
    return { leading: [], trailing: [] };
  }
  const header = headerRange(file);
  const lines = (ranges: readonly ts.CommentRange[] | undefined): string[] =>
    (ranges ?? [])
      .filter((range) => range.pos !== header?.pos)
      .flatMap((range) => luaCommentLines(file.text.slice(range.pos, range.end)));
  return {
    leading: lines(ts.getLeadingCommentRanges(file.text, node.getFullStart())),
    trailing: lines(ts.getTrailingCommentRanges(file.text, node.getEnd())),
  };
}

// Comments that follow a statement on its line in the source, printed after it on its line.
const trailingComments = new WeakMap<Statement, string[]>();

function withComments(node: ts.Node, statements: Statement[]): Statement[] {
  for (const statement of statements) {
    // Replaced by ours, which also hold the `//` comments: no doc comment printed twice.
    statement.leadingComments = undefined;
  }
  const { leading, trailing } = commentsOf(node);
  if (statements.length > 0) {
    if (leading.length > 0) statements[0].leadingComments = leading;
    if (trailing.length > 0) trailingComments.set(statements[statements.length - 1], trailing);
  }
  return statements;
}

// Names a reader would take for LuaJIT's or OpenResty's own modules: never given to ours.
const RESERVED_NAMES = new Set(["ffi", "jit", "bit", "ngx", "string", "table", "math", "C", "_M"]);

/**
 * `local bounded = require("resty.mtls_pool.bounded")` rather than TypeScriptToLua's
 * `local ____bounded = ...` for the table an `import { a, b } from "./bounded"` reads a and b
 * from: the module's own name when the source uses no identifier of that name, else
 * `<name>_module`. TypeScriptToLua's `____` names are its own, so renaming one in the whole
 * file touches nothing else.
 */
function renameModuleLocals(source: ts.SourceFile, file: tstl.File): void {
  const used = identifiers(source);
  const renames = new Map<string, string>();
  for (const statement of file.statements) {
    if (!tstl.isVariableDeclarationStatement(statement) || statement.left.length !== 1) continue;
    const holder = statement.left[0].text;
    const value = statement.right?.[0];
    const isRequire = value !== undefined && tstl.isCallExpression(value) && tstl.isIdentifier(value.expression) &&
      value.expression.text === "require";
    if (!isRequire || !holder.startsWith("____")) continue;
    const base = holder.slice(4);
    const name = used.has(base) || RESERVED_NAMES.has(base) ? base + "_module" : base;
    if (!used.has(name)) renames.set(holder, name);
  }
  const rename = (value: unknown): void => {
    if (Array.isArray(value)) {
      value.forEach(rename);
    } else if (typeof value === "object" && value !== null) {
      const node = value as { kind?: unknown; text?: unknown };
      if (node.kind === tstl.SyntaxKind.Identifier && typeof node.text === "string" && renames.has(node.text)) {
        (node as { text: string }).text = renames.get(node.text) as string;
        return;
      }
      for (const [key, child] of Object.entries(value)) {
        if (key !== "parent") rename(child);
      }
    }
  };
  if (renames.size > 0) rename(file.statements);
}

/**
 * `return connect` for a module that is one value (`export = connect`), where TypeScriptToLua
 * writes `local ____exports = connect` and `return ____exports`.
 */
function returnExportAssignment(file: tstl.File): void {
  const statements = file.statements;
  const [local, last] = statements.slice(-2);
  if (
    local !== undefined && last !== undefined &&
    tstl.isVariableDeclarationStatement(local) && local.left.length === 1 && local.left[0].text === "____exports" &&
    local.right?.length === 1 && tstl.isReturnStatement(last) && last.expressions.length === 1 &&
    tstl.isIdentifier(last.expressions[0]) && last.expressions[0].text === "____exports"
  ) {
    statements.splice(-2, 2, tstl.createReturnStatement([local.right[0]]));
  }
}

const identifierCache = new WeakMap<ts.SourceFile, Set<string>>();

/** Every identifier a source file spells out. */
function identifiers(file: ts.SourceFile): Set<string> {
  let found = identifierCache.get(file);
  if (found === undefined) {
    const names = new Set<string>();
    const visit = (node: ts.Node): void => {
      if (ts.isIdentifier(node)) names.add(node.text);
      ts.forEachChild(node, visit);
    };
    visit(file);
    found = names;
    identifierCache.set(file, found);
  }
  return found;
}

/** `local function f` or `function _M.f`. */
function isFunction(statement: Statement): boolean {
  return (
    (tstl.isVariableDeclarationStatement(statement) || tstl.isAssignmentStatement(statement)) &&
    tstl.isFunctionDefinition(statement)
  );
}

/** `_M.name = value`: one line of a module's export list. */
function isExport(statement: Statement | undefined): boolean {
  if (statement === undefined || !tstl.isAssignmentStatement(statement)) return false;
  const target = statement.left[0];
  return tstl.isTableIndexExpression(target) && tstl.isIdentifier(target.table) && target.table.text === "____exports";
}

class ReadablePrinter extends tstl.LuaPrinter {
  private previousTopLevel: Statement | undefined;
  private previousWasImport = false;
  private readonly modules = new Set<string>();

  /** `local m = require(...)`, or `local a = m.a` for one of our modules: the import block. */
  private isImport(statement: Statement): boolean {
    if (!tstl.isVariableDeclarationStatement(statement) || statement.left.length !== 1) return false;
    const value = statement.right?.[0];
    if (value === undefined) return false;
    if (tstl.isCallExpression(value) && tstl.isIdentifier(value.expression) && value.expression.text === "require") {
      // Our own modules (relative paths until TypeScriptToLua resolves them, after printing)
      // are imported by name, `local a = m.a` following; ffi and the like are used as tables.
      const [path] = value.params;
      if (path !== undefined && tstl.isStringLiteral(path) && path.value.startsWith(".")) {
        this.modules.add(statement.left[0].text);
      }
      return true;
    }
    return tstl.isTableIndexExpression(value) && tstl.isIdentifier(value.table) && this.modules.has(value.table.text);
  }

  /**
   * A blank line, at the top level of a file, after the imports, around functions, and before
   * a commented statement, the export list and the final return, as hand-written modules are
   * spaced.
   */
  public override printStatement(statement: Statement): Printed {
    const previous = this.previousTopLevel;
    const topLevel = this.currentIndent === "";
    const afterImports = topLevel && this.previousWasImport && !this.isImport(statement);
    if (topLevel) {
      this.previousTopLevel = statement;
      this.previousWasImport = this.isImport(statement);
    }
    let printed = super.printStatement(statement);
    const trailing = trailingComments.get(statement);
    if (trailing !== undefined) {
      printed = this.concatNodes(printed, " --" + trailing.join(" "));
    }
    const apart =
      statement.leadingComments !== undefined ||
      isFunction(statement) ||
      (previous !== undefined && isFunction(previous)) ||
      tstl.isReturnStatement(statement) ||
      afterImports ||
      (isExport(statement) && !isExport(previous));
    return topLevel && previous !== undefined && apart ? this.concatNodes("\n", printed) : printed;
  }

  /**
   * Arguments and table fields on one line when they fit, else one per line (TypeScriptToLua
   * goes by the kind of expression: any call among the arguments spread them over lines, and a
   * table of short tables stayed on one line of any length).
   */
  public override printExpressionList(expressions: tstl.Expression[]): (string | Printed)[] {
    const printed = expressions.map((expression) => this.printExpression(expression));
    const line = printed.map((node) => node.toString()).join(", ");
    if (expressions.length === 0 || (!line.includes("\n") && this.currentIndent.length + START_COLUMN + line.length <= WRAP_AT)) {
      return printed.flatMap((node, index) => (index === 0 ? [node] : [", ", node]));
    }
    const chunks: (string | Printed)[] = ["\n"];
    this.pushIndent();
    for (const [index, expression] of expressions.entries()) {
      chunks.push(this.indent(), this.printExpression(expression), index < expressions.length - 1 ? ",\n" : "\n");
    }
    this.popIndent();
    chunks.push(this.indent());
    return chunks;
  }

  /** 'say "this"' rather than "say \\"this\\"": single quotes for a string with double quotes in it. */
  public override printStringLiteral(expression: tstl.StringLiteral): Printed {
    const text = expression.value;
    if (!text.includes('"') || text.includes("'")) {
      return super.printStringLiteral(expression);
    }
    const double = tstl.escapeString(text);
    return this.createSourceNode(expression, "'" + double.slice(1, -1).replace(/\\"/g, '"') + "'");
  }

  public override printIdentifier(expression: tstl.Identifier): Printed {
    if (expression.text === "____exports") {
      return this.createSourceNode(expression, "_M");
    }
    if (expression.text === "____") {
      return this.createSourceNode(expression, "_");
    }
    return super.printIdentifier(expression);
  }

  public override printBinaryExpression(expression: tstl.BinaryExpression): Printed {
    const operator = expression.operator;
    const precedence = CHAINS.get(operator);
    if (precedence === undefined) {
      return super.printBinaryExpression(expression);
    }
    const operands: tstl.Expression[] = [];
    const flatten = (operand: tstl.Expression): void => {
      if (tstl.isBinaryExpression(operand) && operand.operator === operator) {
        flatten(operand.left);
        flatten(operand.right);
      } else {
        operands.push(operand);
      }
    };
    flatten(expression);
    // Operands that bind tighter than the operator print bare, the others in parentheses.
    const internals = this as unknown as PrinterInternals;
    const printed = operands.map((operand) => internals.printExpressionInParenthesesIfNeeded(operand, precedence + 1));
    const texts = printed.map((node) => node.toString());
    const separator = " " + this.printOperator(operator).toString() + " ";
    const multiLine = texts.some((text) => text.includes("\n"));
    if (!multiLine && this.currentIndent.length + START_COLUMN + texts.join(separator).length <= WRAP_AT) {
      return this.createSourceNode(expression, printed.flatMap((node, index) => (index === 0 ? [node] : [separator, node])));
    }
    // Too long for one line: fill each line, continuing on the next with the operator, one
    // indent deeper. An operand that was wrapped itself ends where its last line ends.
    this.pushIndent();
    const continuation = "\n" + this.indent() + separator.trimStart();
    this.popIndent();
    const firstLine = (text: string): number => text.split("\n")[0].length;
    const endColumn = (text: string, start: number): number =>
      text.includes("\n") ? text.length - text.lastIndexOf("\n") - 1 : start + text.length;
    const chunks: (Printed | string)[] = [printed[0]];
    let column = endColumn(texts[0], this.currentIndent.length + START_COLUMN);
    for (let index = 1; index < printed.length; index += 1) {
      if (column + separator.length + firstLine(texts[index]) > WRAP_AT) {
        chunks.push(continuation, printed[index]);
        column = endColumn(texts[index], continuation.length - 1);
      } else {
        chunks.push(separator, printed[index]);
        column = endColumn(texts[index], column + separator.length);
      }
    }
    return this.createSourceNode(expression, chunks);
  }
}

/** The plugin: comment-carrying visitors for every statement kind, the header, the printer. */
export function readableLua(): Plugin {
  const visitors: tstl.Visitors = {};
  for (const kind of STATEMENT_KINDS) {
    (visitors as Record<number, tstl.Visitor<ts.Node>>)[kind] = (node, context) =>
      withComments(node, context.superTransformStatements(node as ts.Statement));
  }
  visitors[ts.SyntaxKind.SourceFile] = (node, context) => {
    const [file] = context.superTransformNode(node) as [tstl.File];
    renameModuleLocals(node, file);
    returnExportAssignment(file);
    const header = headerRange(node);
    if (header !== undefined && file.statements.length > 0) {
      file.statements[0].leadingComments = luaCommentLines(node.text.slice(header.pos, header.end));
    }
    return file;
  };
  return {
    visitors,
    printer: (program, emitHost, fileName, file) => new ReadablePrinter(emitHost, program, fileName).print(file),
  };
}
