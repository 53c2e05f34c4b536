// Prepared statements kept per connection: a CNI command runs each statement a few times, and
// preparing costs more than running.
import type { DatabaseSync, StatementSync } from "node:sqlite";

/** `q(sql)`: the statement for sql on db, prepared on first use. */
export function statementCache(db: DatabaseSync): (sql: string) => StatementSync {
  const stmts = new Map<string, StatementSync>();
  return (sql) => {
    let s = stmts.get(sql);
    if (!s) {
      s = db.prepare(sql);
      stmts.set(sql, s);
    }
    return s;
  };
}
