// Parses each LogQL query given on stdin (a JSON array of strings) with
// Grafana's own grammar, @grafana/lezer-logql (what Grafana's query editor
// and Logs Drilldown parse with), and prints {"checked": n, "refused":
// [{"query", "at", "near"}]}: a query is refused when its syntax tree has
// an error node. Driven by tests/it/loki/grammar.rs.
import { parser } from '@grafana/lezer-logql';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const queries = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const refused = [];
for (const query of queries) {
  const tree = parser.parse(query);
  let error = null;
  tree.iterate({
    enter(node) {
      if (error === null && node.type.isError) {
        error = node.from;
      }
    },
  });
  if (error !== null) {
    refused.push({ query, at: error, near: query.slice(Math.max(0, error - 10), error + 10) });
  }
}
process.stdout.write(JSON.stringify({ checked: queries.length, refused }));
