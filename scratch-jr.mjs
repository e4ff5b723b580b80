import { Template } from '@huggingface/jinja';
import fs from 'fs';
const cases = JSON.parse(fs.readFileSync(process.argv[2],'utf8'));
const py = JSON.parse(fs.readFileSync(process.argv[3],'utf8'));
let bad=0;
cases.forEach((c,i) => {
  let r;
  try { r = { ok: new Template(c.t).render(c.v) }; } catch (e) { r = { err: e.message }; }
  const p = py[i];
  const same = (r.ok !== undefined && r.ok === p.ok) || (r.err !== undefined && p.err !== undefined);
  if (!same) { bad++; console.log(i, JSON.stringify(c.t).slice(0,200), '\n  js:', JSON.stringify(r), '\n  py:', JSON.stringify(p)); }
});
console.log('diffs', bad, 'of', cases.length);
