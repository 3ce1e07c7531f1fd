// The registry UI: adapters, a version, and versions compared. Everything a model or a person
// wrote (names, config values, outputs) reaches the page as text nodes, never as HTML.
'use strict';

const main = document.getElementById('main');
const tokenInput = document.getElementById('token');
tokenInput.value = sessionStorage.getItem('tune-token') || '';
tokenInput.addEventListener('change', () => sessionStorage.setItem('tune-token', tokenInput.value));

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
  const response = await fetch('/api/' + path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function fmt(value) {
  if (value === undefined || value === null) return '-';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(4);
  return String(value);
}

function versionLink(name, version) {
  return el('a', {href: `#/v/${encodeURIComponent(name)}/${version}`}, `${name}:${version}`);
}

// A line chart of series [{name, points: [[x, y], ...]}] as SVG.
function chart(series, title, xName = 'step') {
  const ns = 'http://www.w3.org/2000/svg';
  const width = 560, height = 240, pad = 40;
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  const all = series.flatMap(s => s.points);
  if (all.length === 0) return el('p', {}, `${title}: no points`);
  const xs = all.map(p => p[0]), ys = all.map(p => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs) || 1];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = x => pad + (x - x0) / ((x1 - x0) || 1) * (width - 2 * pad);
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
  for (const [text, x, y] of [[fmt(y1), 2, pad], [fmt(y0), 2, height - pad],
                               [`${xName} ${x0}`, pad, height - 8], [`${x1}`, width - pad - 20, height - 8]]) {
    const label = document.createElementNS(ns, 'text');
    label.setAttribute('x', x);
    label.setAttribute('y', y);
    label.setAttribute('font-size', '11');
    label.textContent = text;
    svg.append(label);
  }
  return el('figure', {}, el('figcaption', {}, title), svg);
}

// ---- Adapters: every version, sortable and filterable ----
const listState = {filter: '', sort: '-created_ms'};
let listTimer = null;

async function showAdapters() {
  const controls = el('div', {class: 'controls'},
    el('input', {type: 'text', id: 'filter', value: listState.filter,
                 placeholder: "filter, e.g. scores.exact_match > 0.5 and adapter.rank = 16"}),
    el('button', {id: 'apply', onclick: () => {
      listState.filter = document.getElementById('filter').value;
      render();
    }}, 'filter'),
    el('button', {id: 'compare', onclick: () => {
      const picked = [...document.querySelectorAll('input.pick:checked')].map(box => box.value);
      if (picked.length >= 2) location.hash = '#/compare/' + picked.map(encodeURIComponent).join(',');
    }}, 'compare selected'));
  const message = el('p', {class: 'error', id: 'list-error'});
  const table = el('table', {id: 'versions'});
  main.replaceChildren(controls, message, table);

  async function render() {
    let page;
    try {
      const query = new URLSearchParams({limit: '1000', sort: listState.sort});
      if (listState.filter) query.set('filter', listState.filter);
      page = await api('versions?' + query);
      message.textContent = '';
    } catch (error) {
      message.textContent = error.message;
      return;
    }
    const metrics = [...new Set(page.versions.flatMap(v => Object.keys(v.scores)))].sort();
    const header = (label, key, numeric) => el('th', {
      class: numeric ? 'num' : '', 'data-key': key,
      onclick: () => {
        listState.sort = listState.sort === '-' + key ? key : '-' + key;
        render();
      }}, label + (listState.sort === key ? ' ▲' : listState.sort === '-' + key ? ' ▼' : ''));
    const head = el('tr', {}, el('th', {}, ''), header('version', 'version', false),
      header('method', 'method', false), header('rank', 'adapter.rank', true),
      metrics.flatMap(m => [header(m, 'scores.' + m, true), el('th', {class: 'num'}, 'gain')]),
      header('dataset', 'dataset.hash', false), el('th', {}, 'aliases'),
      header('created', 'created_ms', false));
    const rows = page.versions.map(v => el('tr', {},
      el('td', {}, el('input', {type: 'checkbox', class: 'pick', value: `${v.name}:${v.version}`})),
      el('td', {}, versionLink(v.name, v.version)),
      el('td', {}, v.method),
      el('td', {class: 'num'}, fmt(v.params['adapter.rank'])),
      metrics.flatMap(m => {
        const score = v.scores[m], base = v.base_scores[m];
        const gain = score !== undefined && base !== undefined ? score - base : undefined;
        return [el('td', {class: 'num'}, fmt(score)),
                el('td', {class: 'num ' + (gain > 0 ? 'gain-up' : gain < 0 ? 'gain-down' : '')},
                   gain === undefined ? '-' : (gain >= 0 ? '+' : '') + gain.toFixed(4))];
      }),
      el('td', {}, el('code', {}, v.dataset.hash.slice(0, 12))),
      el('td', {}, v.aliases.map(a => el('span', {class: 'badge'}, a))),
      el('td', {}, new Date(v.created_ms).toISOString().replace('T', ' ').slice(0, 19))));
    table.replaceChildren(head, ...rows);
  }
  await render();
  // New versions appear without a reload: the list is asked again every 2 seconds.
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
    ['artifact', `${record.artifact.digest} (${record.artifact.size_bytes} bytes)`]];
  const metrics = Object.keys(record.scores).sort();
  const scores = el('table', {id: 'scores'},
    el('tr', {}, el('th', {}, 'metric'), el('th', {class: 'num'}, 'base'),
       el('th', {class: 'num'}, 'tuned'), el('th', {class: 'num'}, 'gain')),
    metrics.map(m => el('tr', {}, el('td', {}, m), el('td', {class: 'num'}, fmt(record.base_scores[m])),
      el('td', {class: 'num'}, fmt(record.scores[m])),
      el('td', {class: 'num'}, record.base_scores[m] === undefined ? '-'
                                 : (record.scores[m] - record.base_scores[m]).toFixed(4)))));
  const aliasInput = el('input', {type: 'text', id: 'alias', value: 'production'});
  const aliasMessage = el('span', {id: 'alias-message'});
  const promote = el('div', {class: 'controls'}, 'alias', aliasInput,
    el('button', {id: 'promote', onclick: async () => {
      try {
        const history = await api(`adapters/${encodeURIComponent(name)}/history`);
        const last = history.filter(m => m.alias === aliasInput.value).pop();
        const moved = await api(
          `adapters/${encodeURIComponent(name)}/aliases/${encodeURIComponent(aliasInput.value)}`, {
            method: 'POST',
            headers: {'Content-Type': 'application/json', 'Authorization': 'Bearer ' + tokenInput.value},
            body: JSON.stringify({version: record.version, expect_version: last ? last.new_version : 0})});
        aliasMessage.textContent = `${moved.alias} -> ${name}:${moved.version}`;
        aliasMessage.className = '';
      } catch (error) {
        aliasMessage.textContent = error.message;
        aliasMessage.className = 'error';
      }
    }}, `point it at ${name}:${record.version}`), aliasMessage);
  const files = el('ul', {}, record.artifact.files.map(f => el('li', {},
    el('a', {href: `/api/adapters/${encodeURIComponent(name)}/versions/${record.version}/files/${f.path.split('/').map(encodeURIComponent).join('/')}`},
       f.path), ` ${f.size_bytes} bytes, sha256 ${f.digest.slice(0, 12)}`)));
  main.replaceChildren(
    el('h2', {}, `${name}:${record.version} `, record.aliases.map(a => el('span', {class: 'badge'}, a))),
    el('div', {class: 'columns'},
      el('section', {}, el('h3', {}, 'lineage'),
         el('table', {id: 'lineage'}, lineage.map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, String(v))))),
         el('h3', {}, 'scores'), scores),
      el('section', {}, el('h3', {}, 'training'),
         chart([{name: 'loss', points: record.curve.map(p => [p.step, p.loss])},
                ...(evalLoss.length ? [{name: 'eval loss', points: evalLoss}] : [])], 'loss by step'),
         chart([{name: 'lr', points: record.curve.map(p => [p.step, p.lr])}], 'learning rate'))),
    el('h3', {}, 'aliases'), promote,
    el('h3', {}, 'download'), files,
    el('p', {}, 'or: ', el('code', {}, `tune fetch ${name}:${record.version} -o ${name}-v${record.version}`)),
    el('h3', {}, 'config'), el('pre', {id: 'config'}, record.config_toml),
    el('h3', {}, 'outputs on the eval prompts'),
    outputTable([`${name}:${record.version}`], [samples]));
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
  main.replaceChildren(
    el('h2', {}, 'compare ', refs.join(' vs ')),
    el('h3', {}, 'config that differs'),
    el('table', {id: 'config-diff'}, el('tr', {}, el('th', {}, 'key'), refs.map(ref => el('th', {}, ref))),
       rows.length ? rows : el('tr', {}, el('td', {colspan: refs.length + 1}, 'the configs are the same'))),
    el('h3', {}, 'scores'),
    el('table', {id: 'compare-scores'},
      el('tr', {}, el('th', {}, 'metric'), el('th', {class: 'num'}, 'base'),
         records.map(r => el('th', {class: 'num'}, `${r.name}:${r.version}`))),
      metrics.map(m => el('tr', {}, el('td', {}, m), el('td', {class: 'num'}, fmt(records[0].base_scores[m])),
        records.map(r => el('td', {class: 'num'}, fmt(r.scores[m])))))),
    chart(records.map(r => ({name: `${r.name}:${r.version}`, points: r.curve.map(p => [p.step, p.loss])})),
          'loss by step'),
    el('p', {}, `${differing.size} config keys differ`),
    el('h3', {}, 'outputs on the same eval prompts'),
    outputTable(refs, outputs));
}

// One row per eval prompt (matched by prompt text): reference, the base model's output where it
// was kept, then each version's output. Under each output, its per-example scores; a version's
// cell is green where its first score beats the base model's on that example, red where it loses.
function outputTable(refs, outputs) {
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
      ? Math.sign(scores[first] - base.scores[first]) : 0;
    return el('td', {class: 'output' + (versus > 0 ? ' gain-up' : versus < 0 ? ' gain-down' : '')},
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
    const table = el('table', {id: 'trials'},
      el('tr', {}, el('th', {}, 'trial'), el('th', {}, 'configuration'), el('th', {}, 'status'),
         params.map(p => el('th', {}, p)),
         el('th', {class: 'num'}, 'step'), el('th', {class: 'num'}, 'loss'),
         metrics.map(m => el('th', {class: 'num'}, m)), el('th', {}, 'version')),
      sweep.trials.map(t => el('tr', {},
        el('td', {}, t.trial), el('td', {}, fmt(t.configuration)), el('td', {}, t.status),
        params.map(p => el('td', {}, fmt((t.params || {})[p]))),
        el('td', {class: 'num'}, fmt(t.step)), el('td', {class: 'num'}, fmt(t.loss)),
        metrics.map(m => el('td', {class: 'num'}, fmt((t.scores || {})[m]))),
        el('td', {}, t.version ? versionLink(...t.version.split(':')) : '-'))));
    // The first metric against each numeric swept parameter: a dot per finished trial, and a line
    // through the mean of the trials at each value (a configuration's repeats share its values).
    const charts = metrics.length === 0 ? [] : params.map(p => {
      const points = sweep.trials.filter(t => t.scores && typeof (t.params || {})[p] === 'number')
        .map(t => [t.params[p], t.scores[metrics[0]]]).sort((a, b) => a[0] - b[0]);
      const byValue = new Map();
      for (const [x, y] of points) byValue.set(x, [...(byValue.get(x) || []), y]);
      const means = [...byValue].map(([x, ys]) => [x, ys.reduce((a, b) => a + b, 0) / ys.length]);
      return chart([{name: `${metrics[0]}, mean`, points: means},
                    {name: 'each trial', points, dots: true}], `${metrics[0]} against ${p}`, p);
    });
    main.replaceChildren(el('h2', {}, `sweep ${name}`), table, el('div', {class: 'columns'}, charts));
  }
  await render();
  listTimer = setInterval(render, 2000);
}

async function route() {
  if (listTimer) clearInterval(listTimer);
  listTimer = null;
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  try {
    if (parts[0] === 'v' && parts.length === 3) await showVersion(parts[1], parts[2]);
    else if (parts[0] === 'compare' && parts[1]) await showCompare(parts[1].split(','));
    else if (parts[0] === 'sweeps') await showSweeps(parts[1]);
    else await showAdapters();
  } catch (error) {
    main.replaceChildren(el('p', {class: 'error'}, error.message));
  }
}

window.addEventListener('hashchange', route);
api('health').then(health => { document.getElementById('registry').textContent = health.registry; });
route();
