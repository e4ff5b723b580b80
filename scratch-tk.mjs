import { loadTokenizer } from './dist/src/tokenizers/load.js';
import fs from 'fs';
const ref = JSON.parse(fs.readFileSync('/work/shared/models/reference/chat-templates.json','utf8'));
for (const [name, t] of Object.entries(ref.templates)) {
  let tok;
  const t0=Date.now();
  try { tok = loadTokenizer('/work/shared/models/'+t.tokenizer).tokenizer; } catch (e) { console.log(name, 'LOAD FAIL', e.message); continue; }
  console.log(name, 'loaded in', Date.now()-t0, 'ms', tok.kind, tok.vocabSize);
  let ok=0, bad=0;
  for (const c of t.cases) {
    if (!c.ids) continue;
    const ids = tok.encode(c.rendered, { addSpecialTokens: false, parseSpecial: true });
    if (JSON.stringify(ids) === JSON.stringify(c.ids)) ok++; else { bad++; console.log(' ', c.name, JSON.stringify(ids).slice(0,200)); }
  }
  let ns=0; const t1=Date.now(); for (let i=0;i<tok.vocabSize;i++) if (tok.isSpecial(i)) ns++;
  console.log(name, ok, bad, 'specials', ns, Date.now()-t1,'ms');
}
