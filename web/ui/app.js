// The registry UI: adapters, a version, and versions compared. Everything a model or a person
// wrote (names, config values, outputs) reaches the page as text nodes, never as HTML.
'use strict';

const main = document.getElementById('main');
const tokenInput = document.getElementById('token');
// `tune serve` prints the page's address with #token=...: kept for this tab, out of the address.
if (location.hash.startsWith('#token=')) {
  sessionStorage.setItem('tune-token', decodeURIComponent(location.hash.slice(7)));
  history.replaceState(null, '', location.pathname + '#/');
}
tokenInput.value = sessionStorage.getItem('tune-token') || '';
tokenInput.addEventListener('change', () => {
  // A change the page has seen already (a second event for one edit) renders nothing again.
  if (tokenInput.value === (sessionStorage.getItem('tune-token') || '')) return;
  sessionStorage.setItem('tune-token', tokenInput.value);
  route();
});

// Every request carries the token: a server opens reads to nobody else unless it says so.
function withToken(options) {
  const headers = Object.assign({}, (options || {}).headers);
  if (tokenInput.value) headers['Authorization'] = 'Bearer ' + tokenInput.value;
  return Object.assign({}, options, {headers});
}

// el('td', {class: 'num'}, 'text', child, ...): strings become text nodes.
function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, options) {
  const response = await fetch('/api/' + path, withToken(options));
  const body = await response.json();
  if (response.status === 401) {
    throw new Error(body.error + ' (paste the token into the token box above)');
  }
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// A file of a version, fetched with the token and handed to the browser as a download.
async function download(url, name) {
  const response = await fetch(url, withToken());
  if (!response.ok) throw new Error((await response.json()).error || response.statusText);
  const link = el('a', {href: URL.createObjectURL(await response.blob()), download: name});
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// Numbers as people read them: four significant digits (0.1235, 12.35), whole numbers from 1,000
// on with separators (tokens/s 12,346), tiny ones in exponent form (2e-4).
function fmt(value) {
  if (value === undefined || value === null) return '-';
  if (typeof value !== 'number' || !Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (Number.isInteger(value)) return abs >= 1e4 ? value.toLocaleString('en-US') : String(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 1e-3) return String(Number(value.toPrecision(4)));
  return value.toExponential(2).replace(/\.?0+e/, 'e');
}

// A change in a score, signed: "+0.1235", "-7.28".
function fmtGain(gain) {
  if (gain === undefined || gain === null || Number.isNaN(gain)) return '-';
  return (gain > 0 ? '+' : '') + fmt(gain);
}

// The class that colours a change of `metric` by what its metric declares: green when it got
// better (lower for eval_loss and perplexity), red when worse, none when the direction is unknown.
function gainClass(metric, gain, scales) {
  const scale = (scales || {})[metric];
  if (!scale || !gain) return '';
  const better = scale.goal === 'minimize' ? gain < 0 : gain > 0;
  return better ? 'gain-up' : 'gain-down';
}

// The lower of `a` and `b` by the metric's goal comes second: larger first when maximised.
function byGoal(goal) {
  return goal === 'minimize' ? (a, b) => a - b : (a, b) => b - a;
}

function versionLink(name, version) {
  return el('a', {href: `#/v/${encodeURIComponent(name)}/${version}`}, `${name}:${version}`);
}

// Whether an axis over `values` reads better in logs: all positive and spanning a ratio of 4 or
// more (a rank of 2 to 16, a learning rate of 1e-4 to 1e-2), where a linear axis crowds the small
// values into a corner.
function logScaleFits(values) {
  if (values.length < 2 || values.some(v => !(v > 0))) return false;
  return Math.max(...values) / Math.min(...values) >= 4;
}

// A line chart of series [{name, points: [[x, y], ...]}] as SVG. `options.logX` puts x on a
// logarithmic axis; `options.ticks` labels those x values on the axis.
function chart(series, title, xName = 'step', options = {}) {
  const ns = 'http://www.w3.org/2000/svg';
  const width = 560, height = 240, pad = 40;
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  const all = series.flatMap(s => s.points);
  if (all.length === 0) return el('p', {}, `${title}: no points`);
  const tx = options.logX ? Math.log : x => x;
  const xs = all.map(p => tx(p[0])), ys = all.map(p => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs) || 1];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = x => pad + (tx(x) - x0) / ((x1 - x0) || 1) * (width - 2 * pad);
  const sy = y => height - pad - (y - y0) / ((y1 - y0) || 1) * (height - 2 * pad);
  const colors = ['#2b6cb0', '#c05621', '#2f855a', '#6b46c1', '#b83280'];
  series.forEach((s, i) => {
    // A series of separate measurements (a sweep's trials) is dots; one that runs on is a line.
    if (s.dots) {
      for (const p of s.points) {
        const dot = document.createElementNS(ns, 'circle');
        dot.setAttribute('cx', sx(p[0]));
        dot.setAttribute('cy', sy(p[1]));
        dot.setAttribute('r', '3');
        dot.setAttribute('fill', colors[i % colors.length]);
        svg.append(dot);
      }
    } else {
      const path = document.createElementNS(ns, 'polyline');
      path.setAttribute('fill', 'none');
      path.setAttribute('stroke', colors[i % colors.length]);
      path.setAttribute('stroke-width', '1.5');
      path.setAttribute('points', s.points.map(p => `${sx(p[0])},${sy(p[1])}`).join(' '));
      svg.append(path);
    }
    const label = document.createElementNS(ns, 'text');
    label.setAttribute('x', width - pad - 150);
    label.setAttribute('y', 16 + 14 * i);
    label.setAttribute('fill', colors[i % colors.length]);
    label.setAttribute('font-size', '12');
    label.textContent = s.name;
    svg.append(label);
  });
  const xLabels = options.ticks
    ? options.ticks.map(t => [fmt(t), sx(t) - 8, height - 22])
    : [[fmt(options.logX ? Math.exp(x0) : x0), pad, height - 22],
       [fmt(options.logX ? Math.exp(x1) : x1), width - pad - 20, height - 22]];
  for (const [text, x, y] of [[fmt(y1), 2, pad], [fmt(y0), 2, height - pad], ...xLabels,
                               [xName + (options.logX ? ' (log scale)' : ''), pad, height - 6]]) {
    const label = document.createElementNS(ns, 'text');
    label.setAttribute('x', x);
    label.setAttribute('y', y);
    label.setAttribute('font-size', '11');
    label.textContent = text;
    svg.append(label);
  }
  return el('figure', {'data-log-x': options.logX ? 'true' : 'false'}, el('figcaption', {}, title), svg);
}

// ---- Adapters: every version, a page at a time, sortable and filterable ----
const pageSize = 50;
const listState = {filter: '', sort: '-created_ms', offset: 0};
let listTimer = null;

async function showAdapters() {
  const controls = el('div', {class: 'controls'},
    el('input', {type: 'text', id: 'filter', value: listState.filter,
                 placeholder: "filter, e.g. scores.exact_match > 0.5 and adapter.rank = 16"}),
    el('button', {id: 'apply', onclick: () => {
      listState.filter = document.getElementById('filter').value;
      listState.offset = 0;
      render();
    }}, 'filter'),
    el('button', {id: 'compare', onclick: () => {
      const picked = [...document.querySelectorAll('input.pick:checked')].map(box => box.value);
      if (picked.length >= 2) location.hash = '#/compare/' + picked.map(encodeURIComponent).join(',');
    }}, 'compare selected'));
  const message = el('p', {class: 'error', id: 'list-error'});
  const table = el('table', {id: 'versions'});
  const pager = el('div', {class: 'controls', id: 'pager'});
  main.replaceChildren(controls, message, table, pager);

  async function render() {
    let page;
    try {
      const query = new URLSearchParams({limit: String(pageSize), offset: String(listState.offset),
                                         sort: listState.sort});
      if (listState.filter) query.set('filter', listState.filter);
      page = await api('versions?' + query);
      message.textContent = '';
    } catch (error) {
      message.textContent = error.message;
      return;
    }
    // Versions removed meanwhile can leave the page past the end: show the last one instead.
    if (page.versions.length === 0 && page.total > 0 && listState.offset > 0) {
      listState.offset = Math.floor((page.total - 1) / pageSize) * pageSize;
      return render();
    }
    const metrics = [...new Set(page.versions.flatMap(v => Object.keys(v.scores)))].sort();
    const header = (label, key, numeric) => el('th', {
      class: numeric ? 'num' : '', 'data-key': key,
      onclick: () => {
        listState.sort = listState.sort === '-' + key ? key : '-' + key;
        listState.offset = 0;
        render();
      }}, label + (listState.sort === key ? ' ▲' : listState.sort === '-' + key ? ' ▼' : ''));
    // The gain over the prompted base model ([eval] few_shot), where a listed version has it.
    const fewShot = m => page.versions.some(v => (v.few_shot_scores || {})[m] !== undefined);
    const gainCell = (m, score, baseline, scales) => {
      const gain = score !== undefined && baseline !== undefined ? score - baseline : undefined;
      return el('td', {class: 'num gain ' + gainClass(m, gain, scales), 'data-metric': m}, fmtGain(gain));
    };
    const head = el('tr', {}, el('th', {}, ''), header('version', 'version', false),
      header('method', 'method', false), header('rank', 'adapter.rank', true),
      metrics.flatMap(m => [header(m, 'scores.' + m, true), el('th', {class: 'num'}, 'gain'),
                            ...(fewShot(m) ? [el('th', {class: 'num'}, 'vs few-shot')] : [])]),
      header('dataset', 'dataset.hash', false), el('th', {}, 'aliases'),
      header('created', 'created_ms', false));
    const rows = page.versions.map(v => el('tr', {},
      el('td', {}, el('input', {type: 'checkbox', class: 'pick', value: `${v.name}:${v.version}`})),
      el('td', {}, versionLink(v.name, v.version)),
      el('td', {}, v.method),
      el('td', {class: 'num'}, fmt(v.params['adapter.rank'])),
      metrics.flatMap(m => {
        const score = v.scores[m];
        return [el('td', {class: 'num'}, fmt(score)), gainCell(m, score, v.base_scores[m], v.score_scales),
                ...(fewShot(m) ? [gainCell(m, score, (v.few_shot_scores || {})[m], v.score_scales)] : [])];
      }),
      el('td', {}, el('code', {}, v.dataset.hash.slice(0, 12))),
      el('td', {}, v.aliases.map(a => el('span', {class: 'badge'}, a))),
      el('td', {}, new Date(v.created_ms).toISOString().replace('T', ' ').slice(0, 19))));
    table.replaceChildren(head, ...rows);
    const first = page.total === 0 ? 0 : listState.offset + 1;
    const last = listState.offset + page.versions.length;
    pager.replaceChildren(
      el('button', {id: 'previous', ...(listState.offset === 0 ? {disabled: ''} : {}), onclick: () => {
        listState.offset = Math.max(0, listState.offset - pageSize);
        render();
      }}, '‹ previous'),
      el('span', {id: 'page-range'}, `versions ${fmt(first)}–${fmt(last)} of ${fmt(page.total)}`),
      el('button', {id: 'next', ...(last >= page.total ? {disabled: ''} : {}), onclick: () => {
        listState.offset += pageSize;
        render();
      }}, 'next ›'));
  }
  await render();
  // New versions appear without a reload: the page is asked again every 2 seconds.
  listTimer = setInterval(() => { if (!document.querySelector('input.pick:checked')) render(); }, 2000);
}

// ---- One version ----
async function showVersion(name, version) {
  const [record, samples] = await Promise.all([
    api(`adapters/${encodeURIComponent(name)}/versions/${version}`),
    api(`adapters/${encodeURIComponent(name)}/versions/${version}/eval`)]);
  // The held-out loss measured during training lives with the run (train.eval_every).
  const run = record.run_id ? await api(`runs/${record.run_id}`).catch(() => null) : null;
  const evalLoss = (run ? run.metrics : []).filter(m => m.values.eval_loss !== undefined)
    .map(m => [m.step, m.values.eval_loss]);
  const lineage = [
    ['method', record.method], ['sweep', record.sweep ? `${record.sweep} trial ${record.trial}` +
      (record.configuration ? ` (configuration ${record.configuration})` : '') : '-'],
    ['dataset', `${record.dataset.hash} (${record.dataset.train_examples} train, ${record.dataset.eval_examples} eval)`],
    ['dataset version', record.dataset.name ? `${record.dataset.name}:${record.dataset.version}` : '-'],
    ['data quality', record.dataset.quality || '-'],
    ['rows dropped', Object.entries(record.dataset.dropped || {}).map(([why, n]) => `${n} ${why}`).join(', ') || 'none'],
    ['base model', `${record.base_model.name} (${record.base_model.path})`],
    ['seed', record.seed], ['run', record.run_id], ['tokens/s', fmt(record.tokens_per_second)],
    ['trainable parameters', record.trainable_parameters ? fmt(record.trainable_parameters) : '-'],
    ['peak memory', record.peak_memory_bytes ? `${fmt(Math.round(record.peak_memory_bytes / 1048576))} MiB` : '-'],
    ['artifact', `${record.artifact.digest} (${fmt(record.artifact.size_bytes)} bytes)`]];
  const metrics = Object.keys(record.scores).sort();
  // Each score beside the base model alone and, with [eval] few_shot, prompted with K examples.
  const shots = record.few_shot > 0 ? `${record.few_shot}-shot` : undefined;
  const fewShotScores = record.few_shot_scores || {};
  const gainCell = (m, baseline) => {
    const gain = baseline === undefined ? undefined : record.scores[m] - baseline;
    return el('td', {class: 'num gain ' + gainClass(m, gain, record.score_scales), 'data-metric': m},
              fmtGain(gain));
  };
  const scores = el('table', {id: 'scores'},
    el('tr', {}, el('th', {}, 'metric'), el('th', {class: 'num'}, 'base'),
       el('th', {class: 'num'}, 'tuned'), el('th', {class: 'num'}, 'gain'),
       ...(shots ? [el('th', {class: 'num'}, `base, ${shots}`), el('th', {class: 'num'}, `vs ${shots}`)] : [])),
    metrics.map(m => el('tr', {}, el('td', {}, m), el('td', {class: 'num'}, fmt(record.base_scores[m])),
      el('td', {class: 'num'}, fmt(record.scores[m])), gainCell(m, record.base_scores[m]),
      ...(shots ? [el('td', {class: 'num'}, fmt(fewShotScores[m])), gainCell(m, fewShotScores[m])] : []))));
  const aliasInput = el('input', {type: 'text', id: 'alias', value: 'production'});
  const aliasMessage = el('span', {id: 'alias-message'});
  const judgements = await judgementSection(`${name}:${record.version}`)
    .catch(error => el('p', {class: 'error'}, error.message));
  const policies = el('div', {});
  const approveMessage = el('span', {id: 'approve-message'});
  const refreshPolicies = async () => {
    policies.replaceChildren(
      await policySection(name, record.version, refreshPolicies, approveMessage)
        .catch(error => el('p', {class: 'error'}, error.message)));
  };
  // Through the alias's policy: the alias moves at once, or a request waits for approvers, or
  // the refusal says which condition fails and by how much.
  const promote = el('div', {class: 'controls'}, 'alias', aliasInput,
    el('button', {id: 'promote', onclick: async () => {
      try {
        const history = await api(`adapters/${encodeURIComponent(name)}/history`);
        const last = history.filter(m => m.alias === aliasInput.value).pop();
        const asked = await api(`adapters/${encodeURIComponent(name)}/promotions`, {
          method: 'POST',
          headers: {'Content-Type': 'application/json'},
          body: JSON.stringify({alias: aliasInput.value, version: record.version,
                                expect_version: last ? last.new_version : 0})});
        aliasMessage.textContent = asked.status === 'moved'
          ? `${asked.alias} -> ${name}:${asked.version}`
          : `request ${asked.id} waits for ${asked.approvers - asked.approved_by.length} approver(s) with the promote role`;
        aliasMessage.className = '';
      } catch (error) {
        aliasMessage.textContent = error.message;
        aliasMessage.className = 'error';
      }
      await refreshPolicies();
    }}, `point it at ${name}:${record.version}`), aliasMessage);
  // An admin may set a policy aside, saying why: the alias history keeps the reason.
  const overrideReason = el('input', {type: 'text', id: 'override-reason', placeholder: 'reason (admins only)'});
  const override = el('div', {class: 'controls'}, overrideReason,
    el('button', {id: 'override', onclick: async () => {
      try {
        const moved = await api(
          `adapters/${encodeURIComponent(name)}/aliases/${encodeURIComponent(aliasInput.value)}`, {
            method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({version: record.version, override_reason: overrideReason.value})});
        aliasMessage.textContent = `${aliasInput.value} -> ${name}:${moved.version} (policy overridden)`;
        aliasMessage.className = '';
      } catch (error) {
        aliasMessage.textContent = error.message;
        aliasMessage.className = 'error';
      }
      await refreshPolicies();
    }}, 'override the policy'));
  const files = el('ul', {}, record.artifact.files.map(f => {
    const url = `/api/adapters/${encodeURIComponent(name)}/versions/${record.version}/files/${f.path.split('/').map(encodeURIComponent).join('/')}`;
    return el('li', {},
      el('a', {href: url, onclick: event => {
        event.preventDefault();
        download(url, f.path.split('/').pop()).catch(error => alert(error.message));
      }}, f.path), ` ${fmt(f.size_bytes)} bytes, sha256 ${f.digest.slice(0, 12)}`);
  }));
  main.replaceChildren(
    el('h2', {}, `${name}:${record.version} `, record.aliases.map(a => el('span', {class: 'badge'}, a))),
    el('div', {class: 'columns'},
      el('section', {}, el('h3', {}, 'lineage'),
         el('table', {id: 'lineage'}, lineage.map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, String(v))))),
         el('h3', {}, 'scores'), scores, el('h3', {}, "people's judgement"), judgements),
      el('section', {}, el('h3', {}, 'training'),
         chart([{name: 'loss', points: record.curve.map(p => [p.step, p.loss])},
                ...(evalLoss.length ? [{name: 'eval loss', points: evalLoss}] : [])], 'loss by step'),
         chart([{name: 'lr', points: record.curve.map(p => [p.step, p.lr])}], 'learning rate'))),
    el('h3', {}, 'aliases'), promote, el('h3', {}, 'promotion policies'), policies, approveMessage, override,
    el('h3', {}, 'download'), files,
    el('p', {}, 'or: ', el('code', {}, `tune fetch ${name}:${record.version} -o ${name}-v${record.version}`)),
    el('h3', {}, 'config'), el('pre', {id: 'config'}, record.config_toml),
    el('h3', {}, 'outputs on the eval prompts'),
    outputTable([`${name}:${record.version}`], [samples], record.score_scales));
  await refreshPolicies();
}

// ---- Versions compared ----
async function showCompare(refs) {
  const records = await Promise.all(refs.map(ref => {
    const [name, version] = ref.split(':');
    return api(`adapters/${encodeURIComponent(name)}/versions/${version}`);
  }));
  // The first version against each other: a key differs when any version's value differs.
  const diffs = await Promise.all(refs.slice(1).map(ref =>
    api(`diff?from=${encodeURIComponent(refs[0])}&to=${encodeURIComponent(ref)}`)));
  const outputs = await Promise.all(records.map(r =>
    api(`adapters/${encodeURIComponent(r.name)}/versions/${r.version}/eval`)));
  const differing = new Map();  // key -> value per version
  diffs.forEach((diff, i) => diff.config.forEach(c => {
    if (!differing.has(c.key)) differing.set(c.key, {first: c.from, others: []});
    differing.get(c.key).others[i] = c.to;
  }));
  const rows = [...differing].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([key, values]) => el('tr', {class: 'changed', 'data-key': key},
    el('td', {}, key), el('td', {}, values.first ?? '-'),
    refs.slice(1).map((ref, i) => el('td', {}, (i in values.others ? values.others[i] : values.first) ?? '-'))));
  const metrics = [...new Set(records.flatMap(r => Object.keys(r.scores)))].sort();
  // The prompted baseline of the first version, as its base model stands for all of them.
  const fewShot = records[0].few_shot > 0;
  main.replaceChildren(
    el('h2', {}, 'compare ', refs.join(' vs ')),
    el('h3', {}, 'config that differs'),
    el('table', {id: 'config-diff'}, el('tr', {}, el('th', {}, 'key'), refs.map(ref => el('th', {}, ref))),
       rows.length ? rows : el('tr', {}, el('td', {colspan: refs.length + 1}, 'the configs are the same'))),
    el('h3', {}, 'scores'),
    el('table', {id: 'compare-scores'},
      el('tr', {}, el('th', {}, 'metric'), el('th', {class: 'num'}, 'base'),
         ...(fewShot ? [el('th', {class: 'num'}, `base, ${records[0].few_shot}-shot`)] : []),
         records.map(r => el('th', {class: 'num'}, `${r.name}:${r.version}`))),
      metrics.map(m => el('tr', {}, el('td', {}, m), el('td', {class: 'num'}, fmt(records[0].base_scores[m])),
        ...(fewShot ? [el('td', {class: 'num'}, fmt(records[0].few_shot_scores[m]))] : []),
        records.map(r => el('td', {class: 'num'}, fmt(r.scores[m])))))),
    chart(records.map(r => ({name: `${r.name}:${r.version}`, points: r.curve.map(p => [p.step, p.loss])})),
          'loss by step'),
    el('p', {}, `${differing.size} config keys differ`),
    el('h3', {}, 'outputs on the same eval prompts'),
    outputTable(refs, outputs, records[0].score_scales));
}

// One row per eval prompt (matched by prompt text): reference, the base model's output where it
// was kept, then each version's output. Under each output, its per-example scores; a version's
// cell is green where its first score beats the base model's on that example, red where it loses,
// by that metric's goal.
function outputTable(refs, outputs, scales) {
  const byPrompt = new Map();
  outputs.forEach((samples, i) => samples.forEach(sample => {
    if (!byPrompt.has(sample.prompt)) byPrompt.set(sample.prompt, {reference: sample.reference, outputs: []});
    const row = byPrompt.get(sample.prompt);
    row.outputs[i] = sample;
    if (row.base === undefined && sample.base_prediction !== undefined) {
      row.base = {prediction: sample.base_prediction, scores: sample.base_scores || {}};
    }
  }));
  if (byPrompt.size === 0) return el('p', {}, 'no evaluation outputs were stored with these versions');
  const withBase = [...byPrompt.values()].some(row => row.base !== undefined);
  const cell = (output, base) => {
    if (output === undefined) return el('td', {class: 'output'}, '-');
    const scores = output.scores || {};
    const first = Object.keys(scores).sort()[0];
    const versus = base && first !== undefined && base.scores[first] !== undefined
      ? gainClass(first, scores[first] - base.scores[first], scales) : '';
    return el('td', {class: 'output' + (versus ? ' ' + versus : '')},
      el('div', {class: 'prediction'}, output.prediction),
      el('div', {class: 'example-scores'},
         Object.keys(scores).sort().map(m => `${m} ${fmt(scores[m])}`).join(' · ')));
  };
  return el('table', {id: 'outputs'},
    el('tr', {}, el('th', {}, 'prompt'), el('th', {}, 'reference'),
       withBase ? el('th', {}, 'base model') : [], refs.map(ref => el('th', {}, ref))),
    [...byPrompt].map(([prompt, row]) => el('tr', {},
      el('td', {class: 'output'}, prompt), el('td', {class: 'output'}, row.reference ?? ''),
      withBase ? cell(row.base) : [],
      refs.map((ref, i) => cell(row.outputs[i], row.base)))));
}

// ---- Sweeps: trials with parameters and scores, live while they run ----
async function showSweeps(name) {
  if (!name) {
    const sweeps = await api('sweeps');
    main.replaceChildren(el('h2', {}, 'sweeps'), el('table', {id: 'sweeps'},
      el('tr', {}, el('th', {}, 'sweep'), el('th', {class: 'num'}, 'trials'), el('th', {}, 'status')),
      sweeps.map(sweep => el('tr', {},
        el('td', {}, el('a', {href: `#/sweeps/${encodeURIComponent(sweep.name)}`}, sweep.name)),
        el('td', {class: 'num'}, sweep.trials.length),
        el('td', {}, Object.entries(sweep.trials.reduce((counts, t) => {
          counts[t.status] = (counts[t.status] || 0) + 1;
          return counts;
        }, {})).map(([status, n]) => `${n} ${status}`).join(', '))))));
    return;
  }
  async function render() {
    const sweep = await api(`sweeps/${encodeURIComponent(name)}`);
    const params = [...new Set(sweep.trials.flatMap(t => Object.keys(t.params || {})))].sort();
    const metrics = [...new Set(sweep.trials.flatMap(t => Object.keys(t.scores || {})))].sort();
    // What the sweep optimises leads; sweeps recorded before it was kept fall back to a metric.
    const objective = sweep.objective ? sweep.objective.metric : metrics[0];
    const goal = sweep.objective ? sweep.objective.goal
                                 : ((sweep.score_scales || {})[objective] || {}).goal;
    const others = metrics.filter(m => m !== objective);
    const shown = objective === undefined ? [] : [objective, ...others];
    const interval = (sweep.intervals || {})[objective] || '95% CI';

    // Each configuration once: its mean, deviation and interval over its seeds, best first.
    const configurations = [...(sweep.configurations || [])].sort((a, b) => {
      const x = (a.scores[objective] || {}).mean, y = (b.scores[objective] || {}).mean;
      if (x === undefined || y === undefined) return (x === undefined) - (y === undefined);
      return byGoal(goal)(x, y);
    });
    const spreadCells = c => {
      const s = c.scores[objective];
      if (!s) return [el('td', {class: 'num'}, '-'), el('td', {class: 'num'}, '-'), el('td', {}, '-')];
      return [el('td', {class: 'num objective-mean'}, fmt(s.mean)),
              el('td', {class: 'num'}, s.count > 1 ? fmt(s.stddev) : '-'),
              el('td', {class: 'interval'}, s.count > 1 ? `${fmt(s.ci95_low)} to ${fmt(s.ci95_high)}` : '-')];
    };
    const summary = el('table', {id: 'configurations'},
      el('tr', {}, el('th', {}, 'configuration'), params.map(p => el('th', {}, p)),
         el('th', {class: 'num'}, 'seeds'),
         el('th', {class: 'num'}, objective === undefined ? 'objective' : `${objective} mean`),
         el('th', {class: 'num'}, 'sd'), el('th', {id: 'interval-name'}, interval),
         others.map(m => el('th', {class: 'num'}, `${m} mean`))),
      configurations.map(c => el('tr', {'data-configuration': c.configuration},
        el('td', {}, c.configuration), params.map(p => el('td', {}, fmt((c.params || {})[p]))),
        el('td', {class: 'num'}, `${c.finished}/${c.trials.length}`),
        spreadCells(c),
        others.map(m => el('td', {class: 'num'}, fmt((c.scores[m] || {}).mean))))));

    // Where each trial ran and why each of its attempts ended, once one ran under Slurm or twice.
    const placed = sweep.trials.some(t => t.job || (t.attempts || []).length > 1);
    const place = a => a.job ? `${a.node || '?'} (job ${a.job})` : (a.node || '-');
    const attemptCells = t => !placed ? [] : [
      el('td', {class: 'where'}, place(t)),
      el('td', {class: 'attempts', title: (t.attempts || []).map((a, i) =>
        `${i + 1}. ${place(a)}: ${a.end_reason || a.status}${a.error ? ` (${a.error})` : ''}`).join('\n')},
        (t.attempts || []).map(a => a.end_reason || a.status).join(', '))];
    const table = el('table', {id: 'trials'},
      el('tr', {}, el('th', {}, 'trial'), el('th', {}, 'configuration'), el('th', {}, 'seed'),
         el('th', {}, 'status'), placed ? [el('th', {}, 'ran on'), el('th', {}, 'attempts')] : [],
         params.map(p => el('th', {}, p)),
         el('th', {class: 'num'}, 'step'), el('th', {class: 'num'}, 'loss'),
         shown.map(m => el('th', {class: 'num'}, m)), el('th', {}, 'version')),
      sweep.trials.map(t => el('tr', {'data-trial': t.trial},
        el('td', {}, t.trial), el('td', {}, fmt(t.configuration)), el('td', {class: 'seed'}, fmt(t.seed)),
        el('td', {class: 'status', title: t.error || ''}, t.status), attemptCells(t),
        params.map(p => el('td', {}, fmt((t.params || {})[p]))),
        el('td', {class: 'num'}, fmt(t.step)), el('td', {class: 'num'}, fmt(t.loss)),
        shown.map(m => el('td', {class: 'num'}, fmt((t.scores || {})[m]))),
        el('td', {}, t.version ? versionLink(...t.version.split(':')) : '-'))));
    // What the trials are measured against: the base model alone and, with [eval] few_shot,
    // prompted; the same for every trial of a sweep, so the first trial that has it says it.
    const baseline = key => (sweep.trials.find(t => ((t[key] || {})[objective]) !== undefined) || {})[key];
    const baselines = [['base model', baseline('base_scores')], ['base model, few-shot', baseline('few_shot_scores')]]
      .filter(([, scores]) => scores !== undefined).map(([label, scores]) => [label, scores[objective]]);
    // The objective against each numeric swept parameter: a dot per finished trial, a line
    // through the mean of the trials at each value (a configuration's repeats share its values),
    // and a level line for each baseline.
    const charts = objective === undefined ? [] : params.map(p => {
      const points = sweep.trials
        .filter(t => t.scores && t.scores[objective] !== undefined && typeof (t.params || {})[p] === 'number')
        .map(t => [t.params[p], t.scores[objective]]).sort((a, b) => a[0] - b[0]);
      const byValue = new Map();
      for (const [x, y] of points) byValue.set(x, [...(byValue.get(x) || []), y]);
      const means = [...byValue].map(([x, ys]) => [x, ys.reduce((a, b) => a + b, 0) / ys.length]);
      const values = [...byValue.keys()];
      const ends = values.length ? [Math.min(...values), Math.max(...values)] : [];
      const levels = ends.length ? baselines.map(([label, y]) => ({name: label, points: ends.map(x => [x, y])})) : [];
      return chart([{name: `${objective}, mean`, points: means},
                    {name: 'each trial', points, dots: true}, ...levels], `${objective} against ${p}`, p,
                   {logX: logScaleFits(values), ticks: values.length <= 8 ? values : undefined});
    });
    main.replaceChildren(el('h2', {}, `sweep ${name}`),
      el('p', {id: 'objective'}, objective === undefined ? 'no finished trial yet'
        : `objective: ${objective} (${goal === 'minimize' ? 'lower' : 'higher'} is better); ` +
          `${interval}: Student's t over each configuration's seeds` +
          (interval.includes(' in [') ? ', cut at the ends of the score\'s range' : '')),
      el('h3', {}, 'configurations'), summary,
      el('h3', {}, 'trials'), table, el('div', {class: 'columns'}, charts));
  }
  await render();
  listTimer = setInterval(render, 2000);
}

// ---- People's judgement: reviews, the blind rating page, results ----
async function showReviews() {
  const hash = location.hash;
  const reviews = await api('reviews');
  const rows = await Promise.all(reviews.map(async review => {
    // A rater's token sees no results of an open review (they would say who wrote what).
    const results = await api(`reviews/${encodeURIComponent(review.name)}/results`).catch(() => null);
    return el('tr', {},
      el('td', {}, review.name), el('td', {}, review.set), el('td', {class: 'num'}, review.prompts),
      el('td', {}, review.closed_ms ? review.outputs.map(o => o.contestant).join(', ')
                                    : `${review.outputs.length} (hidden until closed)`),
      el('td', {class: 'num'}, results ? results.judgements : 'when closed'),
      el('td', {}, review.closed_ms ? `closed by ${review.closed_by}` : 'open'),
      el('td', {}, review.closed_ms ? '' : el('a', {href: `#/review/${encodeURIComponent(review.name)}`}, 'rate'),
         ' ', el('a', {href: `#/results/${encodeURIComponent(review.name)}`}, 'results')));
  }));
  if (location.hash !== hash) return;  // the address moved on while this was asked for
  main.replaceChildren(el('h2', {}, 'reviews'),
    reviews.length === 0 ? el('p', {}, 'no reviews yet: tune review create NAME --prompts FILE')
      : el('table', {id: 'reviews'},
          el('tr', {}, ['review', 'set', 'prompts', 'contestants', 'judgements', 'state', ''].map(h => el('th', {}, h))),
          rows));
}

// One prompt and two outputs, A on the left and B on the right in the order the server chose for
// this pair, without who wrote them; A, B, T and X judge, and the next pair follows at once.
let judgeKeys = null;
async function showRating(name) {
  const reason = el('input', {type: 'text', id: 'reason', maxlength: '1000', placeholder: 'reason (optional)'});
  const message = el('p', {id: 'rating-message'});
  let pair = null;
  const judge = async verdict => {
    if (!pair) return;
    const judged = pair;
    pair = null;
    try {
      await api(`reviews/${encodeURIComponent(name)}/judgements`, {
        method: 'POST', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({pair: judged.id, verdict, reason: reason.value})});
      reason.value = '';
      await next();
    } catch (error) {
      message.textContent = error.message;
      message.className = 'error';
    }
  };
  const buttons = el('div', {class: 'controls'},
    el('button', {id: 'judge-left', onclick: () => judge('left')}, 'A is better (A)'),
    el('button', {id: 'judge-right', onclick: () => judge('right')}, 'B is better (B)'),
    el('button', {id: 'judge-tie', onclick: () => judge('tie')}, 'tie (T)'),
    el('button', {id: 'judge-both-bad', onclick: () => judge('both_bad')}, 'both bad (X)'), reason);
  const shown = el('div', {id: 'pair'});
  const next = async () => {
    const answer = await api(`reviews/${encodeURIComponent(name)}/next`, {method: 'POST', body: '{}'});
    if (answer.done) {
      shown.replaceChildren(el('p', {id: 'done'}, 'You have judged every pair of this review. ',
        el('a', {href: `#/results/${encodeURIComponent(name)}`}, 'results')));
      buttons.hidden = true;
      return;
    }
    pair = answer;
    message.textContent = `pair ${answer.id}: you have judged ${answer.judged}, ${answer.remaining} left`;
    message.className = '';
    shown.replaceChildren(
      el('h3', {}, 'prompt'), el('pre', {id: 'prompt', class: 'output'}, answer.prompt_text),
      answer.reference ? [el('h3', {}, 'reference'), el('pre', {id: 'reference', class: 'output'}, answer.reference)] : [],
      el('div', {class: 'columns'},
        el('section', {}, el('h3', {}, 'A'), el('pre', {id: 'left', class: 'output'}, answer.left)),
        el('section', {}, el('h3', {}, 'B'), el('pre', {id: 'right', class: 'output'}, answer.right))));
  };
  if (judgeKeys) document.removeEventListener('keydown', judgeKeys);
  judgeKeys = event => {
    // Letters typed into a field (the reason, the token) are text, not judgements.
    if (!location.hash.startsWith('#/review/') || ['INPUT', 'TEXTAREA'].includes(event.target.tagName) ||
        event.ctrlKey || event.metaKey || event.altKey) return;
    const verdict = {a: 'left', b: 'right', t: 'tie', x: 'both_bad'}[event.key.toLowerCase()];
    if (verdict) {
      event.preventDefault();
      judge(verdict);
    }
  };
  document.addEventListener('keydown', judgeKeys);
  main.replaceChildren(el('h2', {}, `review ${name}`),
    el('p', {}, 'Which answer is better? Who wrote which stays hidden until the review is closed.'),
    message, shown, buttons);
  await next();
}

async function showResults(name) {
  const hash = location.hash;
  const [results, review] = await Promise.all([
    api(`reviews/${encodeURIComponent(name)}/results`), api(`reviews/${encodeURIComponent(name)}`)]);
  const names = results.contestants.map(c => c.contestant);
  // The automatic scores of each version beside its rating.
  const records = await Promise.all(names.map(c => {
    if (c === 'base') return null;
    const [adapter, version] = c.split(':');
    return api(`adapters/${encodeURIComponent(adapter)}/versions/${version}`).catch(() => null);
  }));
  const metrics = [...new Set(records.flatMap(r => r ? Object.keys(r.scores) : []))].sort();
  const pct = rate => rate.win_rate === null ? '-' : `${Math.round(100 * rate.win_rate)}% of ${rate.judgements}`;
  const table = el('table', {id: 'results'},
    el('tr', {}, el('th', {}, 'contestant'), el('th', {class: 'num'}, 'rating'),
       el('th', {}, '95% interval'), el('th', {class: 'num'}, 'judgements'),
       names.map(n => el('th', {class: 'num'}, `vs ${n}`)), metrics.map(m => el('th', {class: 'num'}, m))),
    results.contestants.map((c, i) => el('tr', {'data-contestant': c.contestant},
      el('td', {}, c.contestant === 'base' ? 'base model' : c.contestant),
      el('td', {class: 'num'}, Math.round(c.rating)),
      el('td', {}, `${Math.round(c.ci95_low)} to ${Math.round(c.ci95_high)}`),
      el('td', {class: 'num'}, c.judgements),
      names.map(n => el('td', {class: 'num'}, c.against[n] ? pct(c.against[n]) : '-')),
      metrics.map(m => el('td', {class: 'num'}, fmt(records[i] ? records[i].scores[m] : undefined))))));
  const agreement = results.agreement.alpha === null
    ? 'agreement between raters: not measured yet (no pair judged by two raters with any variation)'
    : `agreement between raters: Krippendorff's alpha ${results.agreement.alpha.toFixed(2)} over ${results.agreement.items} pairs judged by two or more`;
  if (location.hash !== hash) return;
  main.replaceChildren(el('h2', {}, `results of review ${name}`),
    el('p', {id: 'results-summary'}, `${results.judgements} judgements by ${results.raters} raters; ` +
      (review.closed_ms ? `closed by ${review.closed_by}` : 'open')),
    table,
    el('p', {}, `Bradley-Terry ratings on the Elo scale (ties and both-bad count half), ` +
      `95% intervals from ${results.resamples} bootstrap resamples.`),
    el('p', {id: 'agreement'}, agreement));
}

// People's judgement of one version (NAME:N): its rating and win rates in each review it is in.
async function judgementSection(ref) {
  const reviews = (await api('reviews')).filter(r => r.outputs.some(o => o.contestant === ref));
  if (reviews.length === 0) return el('p', {}, `in no review yet (tune review generate REVIEW ${ref})`);
  const rows = await Promise.all(reviews.map(async review => {
    const results = await api(`reviews/${encodeURIComponent(review.name)}/results`).catch(() => null);
    if (!results) {
      return el('tr', {}, el('td', {}, review.name),
        el('td', {colspan: '4'}, 'open: its results are shown once it is closed'));
    }
    const mine = results.contestants.find(c => c.contestant === ref);
    return el('tr', {},
      el('td', {}, el('a', {href: `#/results/${encodeURIComponent(review.name)}`}, review.name)),
      el('td', {class: 'num'}, Math.round(mine.rating)),
      el('td', {}, `${Math.round(mine.ci95_low)} to ${Math.round(mine.ci95_high)}`),
      el('td', {class: 'num'}, mine.judgements),
      el('td', {}, Object.entries(mine.against).map(([other, rate]) =>
        `${rate.win_rate === null ? '-' : Math.round(100 * rate.win_rate) + '%'} vs ${other}`).join(', ')));
  }));
  return el('table', {id: 'judgements'},
    el('tr', {}, ['review', 'rating', '95% interval', 'judgements', 'win rate'].map(h => el('th', {}, h))),
    rows);
}

// The policies of an adapter's aliases, how `version` stands against each, and the requests that
// wait for approvers, with a button to approve each.
async function policySection(name, version, onChange, approveMessage) {
  const [policies, requests] = await Promise.all([
    api(`adapters/${encodeURIComponent(name)}/policies`),
    api(`adapters/${encodeURIComponent(name)}/promotions`)]);
  // A rater's token is shown the conditions, not how a version stands (open reviews count).
  const checks = await Promise.all(policies.map(p =>
    api(`adapters/${encodeURIComponent(name)}/policies/${encodeURIComponent(p.alias)}/check?version=${version}`)
      .catch(() => p.require.map(condition => ({condition, hidden: true})))));
  const waiting = requests.filter(r => r.status === 'waiting');
  return el('div', {id: 'policies'},
    policies.length === 0 ? el('p', {}, 'no alias of this adapter has a policy') :
      policies.map((p, i) => el('div', {class: 'policy', 'data-alias': p.alias},
        el('h4', {}, `${p.alias}: ${p.approvers} approver${p.approvers === 1 ? '' : 's'} (${p.source || 'set by ' + p.set_by})`),
        el('ul', {}, checks[i].map(c => c.hidden ? el('li', {}, c.condition)
          : el('li', {class: c.met ? 'gain-up' : 'gain-down'},
              `${c.condition}: ${c.met ? 'met' : 'not met'}, ${c.detail}`))))),
    waiting.length === 0 ? [] : el('table', {id: 'requests'},
      el('tr', {}, ['request', 'version', 'alias', 'asked by', 'approved by', ''].map(h => el('th', {}, h))),
      waiting.map(r => el('tr', {},
        el('td', {}, r.id), el('td', {}, `${r.name}:${r.version}`), el('td', {}, r.alias),
        el('td', {}, r.requested_by), el('td', {}, r.approved_by.join(', ') || '-'),
        el('td', {}, el('button', {class: 'approve', 'data-request': r.id, onclick: async () => {
          try {
            const done = await api(`adapters/${encodeURIComponent(name)}/promotions/${r.id}/approve`,
              {method: 'POST', body: '{}'});
            approveMessage.textContent = done.status === 'moved'
              ? `${done.alias} -> ${done.name}:${done.version}` : `request ${done.id} is ${done.status}`;
            approveMessage.className = '';
            onChange();
          } catch (error) {
            approveMessage.textContent = error.message;
            approveMessage.className = 'error';
          }
        }}, 'approve'))))));
}

async function route() {
  if (listTimer) clearInterval(listTimer);
  listTimer = null;
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  try {
    if (parts[0] === 'v' && parts.length === 3) await showVersion(parts[1], parts[2]);
    else if (parts[0] === 'compare' && parts[1]) await showCompare(parts[1].split(','));
    else if (parts[0] === 'sweeps') await showSweeps(parts[1]);
    else if (parts[0] === 'reviews') await showReviews();
    else if (parts[0] === 'review' && parts[1]) await showRating(parts[1]);
    else if (parts[0] === 'results' && parts[1]) await showResults(parts[1]);
    else await showAdapters();
  } catch (error) {
    main.replaceChildren(el('p', {class: 'error'}, error.message));
  }
}

window.addEventListener('hashchange', route);
api('health').then(health => {
  document.getElementById('registry').textContent = health.registry || '';
});
route();
