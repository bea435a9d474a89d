// The Strand console: a single-page app (Preact + htm, uPlot), served as ES modules without a
// bundler. It only speaks to the console's JSON API (/api/...), which talks to the cluster
// through Strand's client. Routes live in the URL hash: #/cluster, #/topics, #/topics/NAME[/TAB],
// #/groups, #/groups/ID.
import { h, render } from 'preact';
import { useState, useEffect, useRef, useCallback } from 'preact/hooks';
import htm from 'htm';
import uPlot from 'uplot';

const html = htm.bind(h);

// ------------------------------------------------------------------------------------- plumbing

class ApiFailure extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  } else if (method !== 'GET') init.headers['content-type'] = 'application/json';
  const res = await fetch(path, init);
  let data = null;
  try {
    data = await res.json();
  } catch {
    throw new ApiFailure('UNKNOWN_SERVER_ERROR', `${res.status} ${res.statusText}`, res.status);
  }
  if (!res.ok) throw new ApiFailure(data?.error?.code ?? 'UNKNOWN_SERVER_ERROR', data?.error?.message ?? res.statusText, res.status);
  return data;
}
const get = (path) => api('GET', path);
const enc = encodeURIComponent;

/** Loads `path` now and every `intervalMs` (0: once); returns { data, error, reload }. */
function usePoll(path, intervalMs = 3000) {
  const [state, setState] = useState({ data: null, error: null, path });
  const seq = useRef(0);
  const load = useCallback(async () => {
    if (path === null) return;
    const mine = ++seq.current;
    try {
      const data = await get(path);
      if (mine === seq.current) setState({ data, error: null, path });
    } catch (e) {
      if (mine === seq.current) setState((s) => ({ data: s.path === path ? s.data : null, error: e, path }));
    }
  }, [path]);
  useEffect(() => {
    setState((s) => (s.path === path ? s : { data: null, error: null, path }));
    load();
    if (!intervalMs) return undefined;
    const t = setInterval(load, intervalMs);
    return () => clearInterval(t);
  }, [load, intervalMs]);
  return { data: state.path === path ? state.data : null, error: state.path === path ? state.error : null, reload: load };
}

function useHashRoute() {
  const [hash, setHash] = useState(location.hash || '#/cluster');
  useEffect(() => {
    const on = () => setHash(location.hash || '#/cluster');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  const [path, query = ''] = hash.slice(1).split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query) };
}

// ------------------------------------------------------------------------------------ formatting

const nf = new Intl.NumberFormat('en-US');
const fmtNum = (n) => (n === null || n === undefined ? '–' : nf.format(n));
function fmtBytes(n) {
  if (n === null || n === undefined || n < 0) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n >= 100 ? 0 : 1)} ${units[i]}`;
}
function fmtRate(n) {
  return n >= 100 ? nf.format(Math.round(n)) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}
function fmtDuration(ms) {
  if (ms === null || ms === undefined) return '–';
  const n = Number(ms);
  if (n < 0 || n >= 9e18) return 'forever';
  const units = [['d', 86400000], ['h', 3600000], ['min', 60000], ['s', 1000]];
  for (const [u, size] of units) if (n >= size && n % size === 0) return `${n / size} ${u}`;
  for (const [u, size] of units) if (n >= size) return `${(n / size).toFixed(1)} ${u}`;
  return `${n} ms`;
}
function fmtTime(ms) {
  if (ms === null || ms === undefined || ms < 0) return '–';
  const d = new Date(ms);
  const pad = (x, w = 2) => String(x).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function stateBadge(state) {
  const cls = { Stable: 'ok', Empty: 'accent', PreparingRebalance: 'warn', CompletingRebalance: 'warn', Dead: 'bad' }[state] ?? '';
  return html`<span class="badge ${cls}" data-testid="group-state">${state}</span>`;
}

// ------------------------------------------------------------------------------------ components

const ICONS = {
  cluster: 'M4 5h16v5H4zM4 14h16v5H4zM7 7.5h.01M7 16.5h.01',
  topics: 'M4 6h16M4 12h16M4 18h10',
  groups: 'M8 11a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM2 20c0-3.3 2.7-6 6-6s6 2.7 6 6M17 11a3 3 0 1 0 0-6M22 20c0-3-2-5.4-4.5-5.9',
};
const Icon = ({ name }) => html`<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round"><path d=${ICONS[name]} /></svg>`;

function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="error" role="alert" data-testid="error"><b>${error.code}</b> ${error.message}</div>`;
}

function Loading({ error }) {
  return error ? html`<${ErrorBox} error=${error} />` : html`<div class="empty">Loading…</div>`;
}

function Modal({ title, children, onClose, footer }) {
  useEffect(() => {
    const on = (e) => e.key === 'Escape' && onClose();
    addEventListener('keydown', on);
    return () => removeEventListener('keydown', on);
  }, [onClose]);
  return html`<div class="modal-back" onClick=${(e) => e.target === e.currentTarget && onClose()}>
    <div class="modal" role="dialog" aria-label=${title}>
      <h3>${title}</h3>
      <div class="body">${children}</div>
      <div class="foot">${footer}</div>
    </div>
  </div>`;
}

let toastTimer = null;
function toast(text) {
  let el = document.querySelector('.toast');
  if (!el) {
    el = document.createElement('div');
    el.className = 'toast';
    el.setAttribute('role', 'status');
    document.body.appendChild(el);
  }
  el.textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.remove(), 3500);
}

/** A form action: runs `fn`, shows its Kafka error, and disables the button meanwhile. */
function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async (fn) => {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, setError };
}

/** Typing the resource's name again enables a destructive action. */
function ConfirmModal({ title, name, what, danger = true, onConfirm, onClose }) {
  const [typed, setTyped] = useState('');
  const act = useAction();
  const go = () => act.run(async () => {
    await onConfirm();
    onClose();
  });
  return html`<${Modal} title=${title} onClose=${onClose} footer=${html`
      <button onClick=${onClose}>Cancel</button>
      <button class=${danger ? 'danger solid' : 'primary'} disabled=${typed !== name || act.busy} onClick=${go} data-testid="confirm-button">${title}</button>`}>
    <p>${what}</p>
    <label>Type <code>${name}</code> to confirm
      <input value=${typed} onInput=${(e) => setTyped(e.target.value)} data-testid="confirm-input" autofocus />
    </label>
    <${ErrorBox} error=${act.error} />
  <//>`;
}

// ---------------------------------------------------------------------------------------- charts

function Chart({ title, series, points, format, axisFormat = format, note, testid }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const width = Math.max(300, box.current.clientWidth);
    const css = getComputedStyle(document.documentElement);
    const grid = css.getPropertyValue('--grid').trim() || '#eef0f3';
    const axis = css.getPropertyValue('--muted').trim() || '#667085';
    const opts = {
      width,
      height: 200,
      series: [{ value: (u, v) => (v === null || v === undefined ? '–' : new Date(v * 1000).toLocaleTimeString()) }, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, fill: s.color + '1a', points: { show: false }, value: (u, v) => (v === null || v === undefined ? '–' : format(v)) }))],
      axes: [{ stroke: axis, grid: { stroke: grid }, ticks: { stroke: grid } }, { stroke: axis, grid: { stroke: grid }, ticks: { stroke: grid }, size: 78, values: (u, vals) => vals.map((v) => axisFormat(v)) }],
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.15)] } },
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
    };
    plot.current = new uPlot(opts, [[], ...series.map(() => [])], box.current);
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(300, box.current.clientWidth), height: 200 }));
    ro.observe(box.current);
    return () => {
      ro.disconnect();
      plot.current.destroy();
      plot.current = null;
    };
  }, []);
  useEffect(() => {
    if (!plot.current) return;
    const xs = points.map((p) => p.t / 1000);
    plot.current.setData([xs, ...series.map((s) => points.map((p) => p[s.key]))]);
  }, [points]);
  return html`<div class="card chart-box" data-testid=${testid}>
    <div class="card-head">${title}</div>
    <div class="card-body"><div ref=${box}></div><p class="legend-note">${note}</p></div>
  </div>`;
}

function TrafficCharts() {
  const { data, error } = usePoll('/api/metrics', 2000);
  const points = data?.points ?? [];
  return html`<div>
    ${error ? html`<${ErrorBox} error=${error} />` : null}
    ${data?.error ? html`<div class="error">Sampling failed: ${data.error}</div>` : null}
    <div class="charts">
      <${Chart} testid="chart-records" title="Records per second" points=${points} format=${fmtRate}
        series=${[{ key: 'recordsIn', label: 'in', color: '#4f46e5' }, { key: 'recordsOut', label: 'out (group commits)', color: '#0f9d58' }]}
        note="In: growth of partition end offsets (transaction markers count too). Out: growth of consumer groups' committed offsets — consumers that never commit are not seen." />
      <${Chart} testid="chart-bytes" title="Bytes per second" points=${points} format=${(v) => fmtBytes(v) + '/s'} axisFormat=${fmtBytes}
        series=${[{ key: 'bytesIn', label: 'in (log growth)', color: '#4f46e5' }, { key: 'bytesOut', label: 'out (estimate)', color: '#0f9d58' }]}
        note="In: growth of the logs' size on disk (DescribeLogDirs; shrinking by retention counts 0). Out: an estimate, records committed × average record size on disk." />
    </div>
    ${points.length < 2 ? html`<p class="muted">Sampling every ${(data?.intervalMs ?? 2000) / 1000} s; the charts fill in as samples arrive.</p>` : null}
  </div>`;
}

// ------------------------------------------------------------------------------------------ pages

function ClusterPage() {
  const { data, error } = usePoll('/api/cluster', 10000);
  const topics = usePoll('/api/topics', 10000);
  const groups = usePoll('/api/groups', 10000);
  const [apisOf, setApisOf] = useState(null);
  if (!data) return html`<${Loading} error=${error} />`;
  const t = topics.data?.topics ?? [];
  const broker = data.brokers.find((b) => b.nodeId === apisOf) ?? data.brokers[0];
  return html`<div data-testid="cluster-page">
    <div class="page-head"><div><h1>Cluster</h1><div class="sub">Cluster id <code data-testid="cluster-id">${data.clusterId ?? '–'}</code></div></div></div>
    <div class="stats">
      <div class="stat"><div class="label">Brokers</div><div class="value" data-testid="broker-count">${data.brokers.length}</div><div class="hint">controller: node ${data.controllerId}</div></div>
      <div class="stat"><div class="label">Topics</div><div class="value">${topics.data ? t.length : '–'}</div><div class="hint">${fmtNum(t.reduce((n, x) => n + x.partitions, 0))} partitions</div></div>
      <div class="stat"><div class="label">Records</div><div class="value">${topics.data ? fmtNum(t.reduce((n, x) => n + x.records, 0)) : '–'}</div><div class="hint">in the logs now</div></div>
      <div class="stat"><div class="label">Size on disk</div><div class="value">${topics.data ? fmtBytes(t.reduce((n, x) => n + (x.sizeBytes ?? 0), 0)) : '–'}</div><div class="hint">topic partitions</div></div>
      <div class="stat"><div class="label">Consumer groups</div><div class="value">${groups.data ? groups.data.groups.length : '–'}</div><div class="hint">${groups.data ? fmtNum(groups.data.groups.reduce((n, g) => n + (g.lag ?? 0), 0)) + ' records of lag' : ''}</div></div>
    </div>
    <${TrafficCharts} />
    <div class="card" style="margin-top:18px">
      <h2>Brokers</h2>
      <div class="table-wrap"><table data-testid="brokers">
        <thead><tr><th>Node</th><th>Host</th><th class="num">Port</th><th>Rack</th><th>Role</th><th>Log directory</th><th class="num">Volume free</th><th class="num">APIs</th></tr></thead>
        <tbody>${data.brokers.map((b) => html`<tr>
          <td class="mono">${b.nodeId}</td><td>${b.host}</td><td class="num">${b.port}</td><td>${b.rack ?? '–'}</td>
          <td>${b.isController ? html`<span class="badge accent">controller</span>` : html`<span class="badge">broker</span>`}</td>
          <td class="mono">${b.logDirs.map((d) => d.path).join(', ') || '–'}</td>
          <td class="num">${b.logDirs.length ? b.logDirs.map((d) => (d.usableBytes >= 0 ? `${fmtBytes(d.usableBytes)} of ${fmtBytes(d.totalBytes)}` : '–')).join(', ') : '–'}</td>
          <td class="num"><a href="#/cluster" onClick=${(e) => { e.preventDefault(); setApisOf(b.nodeId); }}>${b.apis.length}</a></td>
        </tr>`)}</tbody>
      </table></div>
    </div>
    ${broker ? html`<div class="card">
      <h2>API versions of node ${broker.nodeId} <span class="note">what the broker offers (ApiVersions) and the version Strand's client uses</span></h2>
      <div class="table-wrap" style="max-height:360px"><table data-testid="api-versions">
        <thead><tr><th class="num">Key</th><th>API</th><th class="num">Broker versions</th><th class="num">Client uses</th></tr></thead>
        <tbody>${broker.apis.map((a) => html`<tr><td class="num mono">${a.apiKey}</td><td>${a.name}</td><td class="num mono">${a.minVersion}–${a.maxVersion}</td><td class="num mono">${a.clientVersion ?? '–'}</td></tr>`)}</tbody>
      </table></div>
    </div>` : null}
  </div>`;
}

function CreateTopicModal({ onClose, onCreated }) {
  const [name, setName] = useState('');
  const [partitions, setPartitions] = useState('3');
  const [rf, setRf] = useState('');
  const [configs, setConfigs] = useState('');
  const act = useAction();
  const submit = (e) => {
    e?.preventDefault();
    act.run(async () => {
      const cfg = {};
      for (const line of configs.split('\n').map((l) => l.trim()).filter(Boolean)) {
        const eq = line.indexOf('=');
        if (eq <= 0) throw new ApiFailure('INVALID_CONFIG', `configs are NAME=VALUE lines, got "${line}"`);
        cfg[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
      }
      const body = { name: name.trim(), configs: cfg };
      if (partitions.trim()) body.partitions = Number(partitions);
      if (rf.trim()) body.replicationFactor = Number(rf);
      await api('POST', '/api/topics', body);
      toast(`Created topic ${body.name}`);
      onCreated(body.name);
    });
  };
  return html`<${Modal} title="Create topic" onClose=${onClose} footer=${html`
      <button onClick=${onClose}>Cancel</button>
      <button class="primary" onClick=${submit} disabled=${act.busy || !name.trim()} data-testid="create-topic-submit">Create</button>`}>
    <form onSubmit=${submit} class="form-grid">
      <label>Name<input name="name" value=${name} onInput=${(e) => setName(e.target.value)} placeholder="orders" autofocus data-testid="topic-name-input" /></label>
      <div class="form-row">
        <label>Partitions<input type="number" min="1" value=${partitions} onInput=${(e) => setPartitions(e.target.value)} data-testid="topic-partitions-input" /></label>
        <label>Replication factor<input type="number" min="1" value=${rf} onInput=${(e) => setRf(e.target.value)} placeholder="broker default" /></label>
      </div>
      <label>Configs (one NAME=VALUE a line)<textarea value=${configs} onInput=${(e) => setConfigs(e.target.value)} placeholder="retention.ms=604800000\ncleanup.policy=delete"></textarea></label>
    </form>
    <${ErrorBox} error=${act.error} />
  <//>`;
}

function TopicsPage() {
  const [internal, setInternal] = useState(false);
  const { data, error, reload } = usePoll(`/api/topics${internal ? '?internal=true' : ''}`, 5000);
  const [creating, setCreating] = useState(false);
  const [filter, setFilter] = useState('');
  const topics = (data?.topics ?? []).filter((t) => t.name.includes(filter));
  return html`<div data-testid="topics-page">
    <div class="page-head">
      <div><h1>Topics</h1><div class="sub">${data ? `${data.topics.length} topics` : ''}</div></div>
      <div class="actions">
        <input placeholder="Filter by name" value=${filter} onInput=${(e) => setFilter(e.target.value)} aria-label="Filter topics" />
        <label class="check"><input type="checkbox" checked=${internal} onChange=${(e) => setInternal(e.target.checked)} /> internal</label>
        <button class="primary" onClick=${() => setCreating(true)} data-testid="create-topic">Create topic</button>
      </div>
    </div>
    <${ErrorBox} error=${error} />
    <div class="card">
      ${!data ? html`<${Loading} />` : topics.length === 0 ? html`<div class="empty">No topics${filter ? ' match' : ' yet'}.</div>` : html`
      <div class="table-wrap"><table data-testid="topics-table">
        <thead><tr><th>Name</th><th class="num">Partitions</th><th class="num">Replication</th><th class="num">Records</th><th class="num">Size on disk</th><th>Cleanup</th><th class="num">Retention</th><th>Health</th></tr></thead>
        <tbody>${topics.map((t) => html`<tr data-topic=${t.name}>
          <td><a href="#/topics/${enc(t.name)}">${t.name}</a> ${t.internal ? html`<span class="badge">internal</span>` : null}</td>
          <td class="num">${t.partitions}</td><td class="num">${t.replicationFactor}</td>
          <td class="num">${fmtNum(t.records)}</td><td class="num">${fmtBytes(t.sizeBytes)}</td>
          <td>${t.cleanupPolicy ? t.cleanupPolicy.split(',').map((c) => html`<span class="badge ${c === 'compact' ? 'accent' : ''}">${c}</span> `) : '–'}</td>
          <td class="num">${fmtDuration(t.retentionMs)}</td>
          <td>${t.underReplicated > 0 ? html`<span class="badge warn">${t.underReplicated} under-replicated</span>` : html`<span class="badge ok">in sync</span>`}</td>
        </tr>`)}</tbody>
      </table></div>`}
    </div>
    ${creating ? html`<${CreateTopicModal} onClose=${() => setCreating(false)} onCreated=${(name) => { setCreating(false); reload(); location.hash = `#/topics/${enc(name)}`; }} />` : null}
  </div>`;
}

// ---------------------------------------------------------------------------------- topic detail

function PartitionsSection({ topic }) {
  return html`<div class="card">
    <h2>Partitions <span class="note">offsets from ListOffsets, sizes from DescribeLogDirs${topic.compacted ? ', the log cleaner from DescribeLogCleaner' : ''}</span></h2>
    <div class="table-wrap"><table data-testid="partitions-table">
      <thead><tr><th class="num">Partition</th><th class="num">Leader</th><th>Replicas</th><th>ISR</th><th class="num">Start offset</th><th class="num">End offset</th><th class="num">Records</th><th class="num">Size on disk</th>${topic.compacted ? html`<th class="num">Dirty ratio</th><th>Last cleaned</th>` : null}</tr></thead>
      <tbody>${topic.partitions.map((p) => html`<tr>
        <td class="num mono">${p.partition}</td><td class="num mono">${p.leader < 0 ? html`<span class="badge bad">none</span>` : p.leader}</td>
        <td class="mono">${p.replicas.join(', ')}</td>
        <td class="mono">${p.isr.join(', ')} ${p.isr.length < p.replicas.length ? html`<span class="badge warn">under-replicated</span>` : null}</td>
        <td class="num">${fmtNum(p.startOffset)}</td><td class="num" data-testid="end-offset">${fmtNum(p.endOffset)}</td><td class="num">${fmtNum(p.records)}</td><td class="num">${fmtBytes(p.sizeBytes)}</td>
        ${topic.compacted ? html`<td class="num" data-testid="dirty-ratio">${p.cleaner ? `${(p.cleaner.dirtyRatio * 100).toFixed(1)} %` : '–'}</td>
        <td data-testid="last-cleaned">${p.cleaner?.lastError ? html`<span class="badge bad" title=${p.cleaner.lastError}>failed</span>` : p.cleaner?.lastRunEndMs ? html`${fmtTime(p.cleaner.lastRunEndMs)} <span class="note">${fmtNum(p.cleaner.recordsRemoved)} removed</span>` : 'never'}</td>` : null}
      </tr>`)}</tbody>
    </table></div>
  </div>`;
}

function ConfigsSection({ topic, reload }) {
  const [editing, setEditing] = useState(null); // { name, value, isNew }
  const act = useAction();
  const [showAll, setShowAll] = useState(false);
  const save = () => act.run(async () => {
    await api('POST', `/api/topics/${enc(topic.name)}/configs`, { set: { [editing.name.trim()]: editing.value } });
    toast(`Set ${editing.name} on ${topic.name}`);
    setEditing(null);
    reload();
  });
  const reset = (name) => act.run(async () => {
    await api('POST', `/api/topics/${enc(topic.name)}/configs`, { delete: [name] });
    toast(`Reset ${name} to its default`);
    reload();
  });
  const shown = topic.configs.filter((c) => showAll || c.source === 'topic');
  return html`<div class="card">
    <div class="card-head">
      <span>Configs <span class="note">${topic.configs.filter((c) => c.source === 'topic').length} set on the topic</span></span>
      <span class="actions">
        <label class="check"><input type="checkbox" checked=${showAll} onChange=${(e) => setShowAll(e.target.checked)} data-testid="show-all-configs" /> show defaults</label>
        <button class="small" onClick=${() => setEditing({ name: '', value: '', isNew: true })} data-testid="add-config">Set a config</button>
      </span>
    </div>
    <${ErrorBox} error=${act.error} />
    ${shown.length === 0 ? html`<div class="empty">No overrides: every config takes the broker's value. Tick "show defaults" to see them.</div>` : html`
    <div class="table-wrap"><table data-testid="configs-table">
      <thead><tr><th>Name</th><th>Value</th><th>Source</th><th></th></tr></thead>
      <tbody>${shown.map((c) => html`<tr data-config=${c.name}>
        <td class="mono">${c.name}</td>
        <td class="mono">${c.sensitive ? html`<span class="msg-null">hidden</span>` : c.value ?? html`<span class="msg-null">null</span>`}</td>
        <td>${c.source === 'topic' ? html`<span class="badge accent">topic</span>` : html`<span class="badge">${c.source}</span>`}</td>
        <td style="text-align:right;white-space:nowrap">${c.readOnly ? html`<span class="muted">read-only</span>` : html`
          <button class="small" onClick=${() => setEditing({ name: c.name, value: c.value ?? '', isNew: false })}>Edit</button>
          ${c.source === 'topic' ? html` <button class="small" onClick=${() => reset(c.name)}>Reset</button>` : null}`}</td>
      </tr>`)}</tbody>
    </table></div>`}
    ${editing ? html`<${Modal} title=${editing.isNew ? 'Set a config' : `Edit ${editing.name}`} onClose=${() => setEditing(null)} footer=${html`
        <button onClick=${() => setEditing(null)}>Cancel</button>
        <button class="primary" onClick=${save} disabled=${act.busy || !editing.name.trim()} data-testid="save-config">Save</button>`}>
      ${editing.isNew ? html`<label>Name<input value=${editing.name} onInput=${(e) => setEditing({ ...editing, name: e.target.value })} placeholder="retention.ms" data-testid="config-name-input" /></label>` : null}
      <label>Value<input value=${editing.value} onInput=${(e) => setEditing({ ...editing, value: e.target.value })} data-testid="config-value-input" /></label>
      <${ErrorBox} error=${act.error} />
    <//>` : null}
  </div>`;
}

function JsonView({ text }) {
  let pretty;
  try {
    pretty = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
  // Token colouring on the escaped, pretty-printed text.
  const parts = [];
  const re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  let last = 0;
  let m;
  while ((m = re.exec(pretty)) !== null) {
    if (m.index > last) parts.push(pretty.slice(last, m.index));
    if (m[1]) parts.push(html`<span class=${m[2] ? 'json-key' : 'json-str'}>${m[1]}</span>`, m[2] ?? '');
    else if (m[3]) parts.push(html`<span class="json-lit">${m[3]}</span>`);
    else parts.push(html`<span class="json-num">${m[4]}</span>`);
    last = re.lastIndex;
  }
  parts.push(pretty.slice(last));
  return parts;
}

function Bytes({ b, open }) {
  if (b.text === null) return html`<span class="msg-null">null</span>`;
  const cls = `msg-value${open ? ' open' : ''}${b.encoding === 'base64' ? ' b64' : ''}`;
  return html`<div class=${cls}>${b.json && open ? html`<${JsonView} text=${b.text} />` : b.text}${b.truncated ? html`<span class="muted"> … (${fmtBytes(b.size)} in all)</span>` : null}</div>`;
}

function MessageRow({ m }) {
  const [open, setOpen] = useState(false);
  return html`<tr class="msg" onClick=${() => setOpen(!open)} data-testid="message-row" data-offset=${m.offset}>
    <td class="num mono">${m.offset}</td>
    <td class="mono" style="white-space:nowrap">${fmtTime(m.timestamp)}</td>
    <td class="msg-key"><${Bytes} b=${m.key} open=${open} /></td>
    <td data-testid="message-value"><${Bytes} b=${m.value} open=${open} /> ${m.value.json ? html`<span class="badge accent">JSON</span>` : null}</td>
    <td>${m.headers.length === 0 ? html`<span class="msg-null">none</span>` : m.headers.map((hd) => html`<span class="hdr">${hd.key}=${hd.value.text ?? 'null'}</span>`)}</td>
  </tr>`;
}

function MessagesSection({ topic }) {
  const [partition, setPartition] = useState(0);
  const [mode, setMode] = useState('earliest'); // earliest | latest | offset | timestamp
  const [offset, setOffset] = useState('0');
  const [when, setWhen] = useState('');
  const [limit, setLimit] = useState('50');
  const [result, setResult] = useState(null);
  const [tail, setTail] = useState(false);
  const act = useAction();
  const records = useRef([]);
  const nextRef = useRef(0);
  const loads = useRef(0);

  const query = (extra) => `/api/topics/${enc(topic.name)}/messages?partition=${partition}&limit=${enc(limit || '50')}${extra}`;
  const load = () => act.run(async () => {
    let extra = '';
    if (mode === 'latest') extra = '&from=end';
    else if (mode === 'offset') extra = `&offset=${enc(offset)}`;
    else if (mode === 'timestamp') {
      const t = Date.parse(when);
      if (Number.isNaN(t)) throw new ApiFailure('INVALID_REQUEST', 'pick a date and time');
      extra = `&timestamp=${t}`;
    }
    const mine = ++loads.current;
    const r = await get(query(extra));
    if (mine !== loads.current) return; // a later load superseded this one
    records.current = r.records;
    nextRef.current = r.next;
    setResult({ ...r, records: r.records });
  });
  useEffect(() => {
    load();
  }, [partition, topic.name]);
  // Live tail: poll from the next offset and append, keeping the last 500 records.
  useEffect(() => {
    if (!tail) return undefined;
    let stopped = false;
    const step = async () => {
      try {
        const r = await get(query(`&offset=${nextRef.current}`));
        if (stopped) return;
        if (r.records.length > 0) {
          records.current = [...records.current, ...r.records].slice(-500);
          nextRef.current = r.next;
        }
        setResult({ ...r, records: records.current });
        act.setError(null);
      } catch (e) {
        if (!stopped) act.setError(e);
      }
      if (!stopped) timer = setTimeout(step, 1000);
    };
    let timer = setTimeout(step, 0);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [tail, partition, topic.name]);

  return html`<div class="card" data-testid="message-browser">
    <div class="card-body">
      <div class="form-row">
        <label>Partition
          <select value=${partition} onChange=${(e) => setPartition(Number(e.target.value))} data-testid="browse-partition">
            ${topic.partitions.map((p) => html`<option value=${p.partition}>${p.partition} (${fmtNum(p.records)} records)</option>`)}
          </select></label>
        <label>Start at
          <select value=${mode} onChange=${(e) => setMode(e.target.value)} data-testid="browse-mode">
            <option value="earliest">earliest</option><option value="latest">latest N</option><option value="offset">offset</option><option value="timestamp">timestamp</option>
          </select></label>
        ${mode === 'offset' ? html`<label>Offset<input type="number" min="0" value=${offset} onInput=${(e) => setOffset(e.target.value)} style="width:120px" data-testid="browse-offset" /></label>` : null}
        ${mode === 'timestamp' ? html`<label>Time<input type="datetime-local" step="1" value=${when} onInput=${(e) => setWhen(e.target.value)} data-testid="browse-timestamp" /></label>` : null}
        <label>Max records<input type="number" min="1" max="500" value=${limit} onInput=${(e) => setLimit(e.target.value)} style="width:100px" /></label>
        <button class="primary" onClick=${load} disabled=${act.busy} data-testid="browse-load">Load</button>
        <label class="check"><input type="checkbox" checked=${tail} onChange=${(e) => setTail(e.target.checked)} data-testid="live-tail" /> Live tail</label>
        ${tail ? html`<span class="live">following</span>` : null}
      </div>
    </div>
    <${ErrorBox} error=${act.error} />
    ${result ? html`<div class="card-body muted" style="padding-top:0" data-testid="browse-summary">
      Partition ${result.partition}: offsets ${fmtNum(result.startOffset)}–${fmtNum(result.endOffset)}; showing ${result.records.length} record${result.records.length === 1 ? '' : 's'}${result.records.length ? ` from ${fmtNum(result.records[0].offset)}` : ''}. Click a record to expand it (JSON is pretty-printed; bytes that are not UTF-8 show as base64).
    </div>` : null}
    ${result && result.records.length > 0 ? html`<div class="table-wrap"><table data-testid="messages-table">
      <thead><tr><th class="num">Offset</th><th>Timestamp</th><th>Key</th><th>Value</th><th>Headers</th></tr></thead>
      <tbody>${result.records.map((m) => html`<${MessageRow} key=${m.offset} m=${m} />`)}</tbody>
    </table></div>` : result ? html`<div class="empty">No records here${tail ? ' yet: new ones appear as they arrive' : ''}.</div>` : null}
  </div>`;
}

/**
 * The sections of a topic's page, as tabs. To add one (e.g. log cleaner state), add an entry:
 * { id, label, render: ({ topic, reload }) => vnode }.
 */
export const TOPIC_SECTIONS = [
  { id: 'partitions', label: 'Partitions', render: ({ topic }) => html`<${PartitionsSection} topic=${topic} />` },
  { id: 'messages', label: 'Messages', render: ({ topic }) => html`<${MessagesSection} topic=${topic} />` },
  { id: 'configs', label: 'Configs', render: ({ topic, reload }) => html`<${ConfigsSection} topic=${topic} reload=${reload} />` },
];

function AddPartitionsModal({ topic, onClose, onDone }) {
  const [count, setCount] = useState(String(topic.partitions.length + 1));
  const act = useAction();
  const go = () => act.run(async () => {
    await api('POST', `/api/topics/${enc(topic.name)}/partitions`, { count: Number(count) });
    toast(`${topic.name} now has ${count} partitions`);
    onDone();
  });
  return html`<${Modal} title="Add partitions" onClose=${onClose} footer=${html`<button onClick=${onClose}>Cancel</button><button class="primary" onClick=${go} disabled=${act.busy} data-testid="add-partitions-submit">Add</button>`}>
    <p>${topic.name} has ${topic.partitions.length} partitions. Partitions can be added, never removed; keys may map to other partitions afterwards.</p>
    <label>New total<input type="number" min=${topic.partitions.length + 1} value=${count} onInput=${(e) => setCount(e.target.value)} data-testid="partition-count-input" /></label>
    <${ErrorBox} error=${act.error} />
  <//>`;
}

function TopicPage({ name, tab }) {
  const { data, error, reload } = usePoll(`/api/topics/${enc(name)}`, 4000);
  const [dialog, setDialog] = useState(null);
  const section = TOPIC_SECTIONS.find((s) => s.id === tab) ?? TOPIC_SECTIONS[0];
  return html`<div data-testid="topic-page">
    <div class="page-head">
      <div>
        <div class="crumbs"><a href="#/topics">Topics</a> /</div>
        <h1 data-testid="topic-title">${name}</h1>
        ${data ? html`<div class="sub">${data.partitions.length} partitions · ${fmtNum(data.partitions.reduce((n, p) => n + p.records, 0))} records · ${fmtBytes(data.partitions.reduce((n, p) => n + (p.sizeBytes ?? 0), 0))} on disk · id <code>${data.topicId}</code></div>` : null}
      </div>
      ${data ? html`<div class="actions">
        <button onClick=${() => setDialog('partitions')} data-testid="add-partitions">Add partitions</button>
        <button class="danger" onClick=${() => setDialog('delete')} data-testid="delete-topic">Delete topic</button>
      </div>` : null}
    </div>
    <nav class="tabs">${TOPIC_SECTIONS.map((s) => html`<a href="#/topics/${enc(name)}/${s.id}" class=${s === section ? 'active' : ''} data-testid="tab-${s.id}">${s.label}</a>`)}</nav>
    ${data ? section.render({ topic: data, reload }) : html`<${Loading} error=${error} />`}
    ${dialog === 'partitions' ? html`<${AddPartitionsModal} topic=${data} onClose=${() => setDialog(null)} onDone=${() => { setDialog(null); reload(); }} />` : null}
    ${dialog === 'delete' ? html`<${ConfirmModal} title="Delete topic" name=${name}
        what=${`Deleting ${name} removes its ${data.partitions.length} partitions and every record in them. This cannot be undone.`}
        onConfirm=${async () => { await api('DELETE', `/api/topics/${enc(name)}?confirm=${enc(name)}`); toast(`Deleted topic ${name}`); location.hash = '#/topics'; }}
        onClose=${() => setDialog(null)} />` : null}
  </div>`;
}

// ------------------------------------------------------------------------------------------ groups

function GroupsPage() {
  const { data, error } = usePoll('/api/groups', 3000);
  return html`<div data-testid="groups-page">
    <div class="page-head"><div><h1>Consumer groups</h1><div class="sub">${data ? `${data.groups.length} groups` : ''}</div></div></div>
    <${ErrorBox} error=${error} />
    <div class="card">
      ${!data ? html`<${Loading} />` : data.groups.length === 0 ? html`<div class="empty">No consumer groups yet.</div>` : html`
      <div class="table-wrap"><table data-testid="groups-table">
        <thead><tr><th>Group</th><th>State</th><th class="num">Members</th><th>Topics</th><th class="num">Lag</th></tr></thead>
        <tbody>${data.groups.map((g) => html`<tr data-group=${g.groupId}>
          <td><a href="#/groups/${enc(g.groupId)}">${g.groupId}</a></td><td>${stateBadge(g.state)}</td>
          <td class="num">${g.members}</td><td>${g.topics.map((t) => html`<a class="hdr" href="#/topics/${enc(t)}">${t}</a>`)}</td>
          <td class="num" data-testid="group-lag">${fmtNum(g.lag)}</td>
        </tr>`)}</tbody>
      </table></div>`}
    </div>
  </div>`;
}

function ResetOffsetsCard({ group, reload }) {
  const topics = [...new Set(group.offsets.map((o) => o.topic))];
  const [topic, setTopic] = useState(topics[0] ?? '');
  const [to, setTo] = useState('earliest');
  const [offset, setOffset] = useState('0');
  const [when, setWhen] = useState('');
  const [confirming, setConfirming] = useState(false);
  const empty = group.members.length === 0;
  const body = () => {
    const b = { topic, to, confirm: group.groupId };
    if (to === 'offset') b.offset = Number(offset);
    if (to === 'timestamp') b.timestamp = Date.parse(when);
    return b;
  };
  return html`<div class="card" data-testid="reset-offsets">
    <h2>Reset offsets <span class="note">${empty ? 'the group has no active members' : 'only when the group is empty: stop its consumers first'}</span></h2>
    <div class="card-body"><div class="form-row">
      <label>Topic<select value=${topic} onChange=${(e) => setTopic(e.target.value)} data-testid="reset-topic">${topics.map((t) => html`<option value=${t}>${t}</option>`)}</select></label>
      <label>To<select value=${to} onChange=${(e) => setTo(e.target.value)} data-testid="reset-to">
        <option value="earliest">earliest</option><option value="latest">latest</option><option value="offset">offset</option><option value="timestamp">timestamp</option>
      </select></label>
      ${to === 'offset' ? html`<label>Offset<input type="number" min="0" value=${offset} onInput=${(e) => setOffset(e.target.value)} data-testid="reset-offset" /></label>` : null}
      ${to === 'timestamp' ? html`<label>Time<input type="datetime-local" step="1" value=${when} onInput=${(e) => setWhen(e.target.value)} /></label>` : null}
      <button class="primary" disabled=${!empty || !topic} onClick=${() => setConfirming(true)} data-testid="reset-offsets-button">Reset offsets…</button>
    </div></div>
    ${confirming ? html`<${ConfirmModal} title="Reset offsets" name=${group.groupId} danger=${false}
        what=${`Moves the committed offsets of ${group.groupId} on every partition of ${topic} to ${to === 'offset' ? `offset ${offset}` : to === 'timestamp' ? when : `the ${to} offset`}.`}
        onConfirm=${async () => { await api('POST', `/api/groups/${enc(group.groupId)}/reset-offsets`, body()); toast(`Reset ${group.groupId} on ${topic}`); reload(); }}
        onClose=${() => setConfirming(false)} />` : null}
  </div>`;
}

function GroupPage({ id }) {
  const { data, error, reload } = usePoll(`/api/groups/${enc(id)}`, 2000);
  if (!data) return html`<div class="crumbs"><a href="#/groups">Consumer groups</a> /</div><${Loading} error=${error} />`;
  const maxLag = Math.max(1, ...data.offsets.map((o) => o.lag));
  return html`<div data-testid="group-page">
    <div class="page-head"><div>
      <div class="crumbs"><a href="#/groups">Consumer groups</a> /</div>
      <h1>${data.groupId}</h1>
      <div class="sub">${stateBadge(data.state)} · ${data.members.length} member${data.members.length === 1 ? '' : 's'} · ${data.protocolType || 'offsets only'}${data.protocol ? ` (${data.protocol})` : ''} · total lag <b data-testid="total-lag">${fmtNum(data.totalLag)}</b></div>
    </div></div>
    <${ErrorBox} error=${error} />
    <div class="card">
      <h2>Lag per partition <span class="note">end offset − committed offset</span></h2>
      ${data.offsets.length === 0 ? html`<div class="empty">No committed offsets.</div>` : html`<div class="table-wrap"><table data-testid="group-offsets">
        <thead><tr><th>Topic</th><th class="num">Partition</th><th class="num">Committed</th><th class="num">End offset</th><th class="num">Lag</th><th>Member</th></tr></thead>
        <tbody>${data.offsets.map((o) => html`<tr>
          <td><a href="#/topics/${enc(o.topic)}">${o.topic}</a></td><td class="num mono">${o.partition}</td>
          <td class="num">${o.committed < 0 ? '–' : fmtNum(o.committed)}</td><td class="num">${fmtNum(o.end)}</td>
          <td class="num" style="white-space:nowrap">${fmtNum(o.lag)}<span class="lagbar" style=${`width:${Math.round((o.lag / maxLag) * 60)}px`}></span></td>
          <td class="mono" style="font-size:12px">${o.member ?? '–'}</td>
        </tr>`)}</tbody>
      </table></div>`}
    </div>
    <div class="card">
      <h2>Members</h2>
      ${data.members.length === 0 ? html`<div class="empty">No active members.</div>` : html`<div class="table-wrap"><table data-testid="group-members">
        <thead><tr><th>Member id</th><th>Client id</th><th>Host</th><th>Assignment</th></tr></thead>
        <tbody>${data.members.map((m) => html`<tr>
          <td class="mono" style="font-size:12px">${m.memberId}${m.groupInstanceId ? html` <span class="badge">static ${m.groupInstanceId}</span>` : null}</td>
          <td>${m.clientId}</td><td class="mono">${m.clientHost}</td>
          <td>${m.assignment.map((a) => html`<span class="hdr">${a.topic}: ${a.partitions.join(', ')}</span>`)}</td>
        </tr>`)}</tbody>
      </table></div>`}
    </div>
    ${data.offsets.length > 0 ? html`<${ResetOffsetsCard} group=${data} reload=${reload} />` : null}
  </div>`;
}

// --------------------------------------------------------------------------------------- the app

function App() {
  const { parts } = useHashRoute();
  const health = usePoll('/api/cluster', 15000);
  const [section = 'cluster', a, b] = parts;
  let page;
  if (section === 'topics' && a) page = html`<${TopicPage} key=${a} name=${a} tab=${b} />`;
  else if (section === 'topics') page = html`<${TopicsPage} />`;
  else if (section === 'groups' && a) page = html`<${GroupPage} key=${a} id=${a} />`;
  else if (section === 'groups') page = html`<${GroupsPage} />`;
  else page = html`<${ClusterPage} />`;
  const link = (id, label) => html`<a href="#/${id}" class=${section === id ? 'active' : ''} data-testid="nav-${id}"><${Icon} name=${id} />${label}</a>`;
  const up = health.data !== null && health.error === null;
  return html`<div class="layout">
    <aside class="sidebar">
      <div class="brand"><img src="/app/favicon.svg" alt="" /><div>Strand<small>console</small></div></div>
      <nav class="nav">${link('cluster', 'Cluster')}${link('topics', 'Topics')}${link('groups', 'Consumer groups')}</nav>
      <div class="side-foot"><span class="dot ${up ? '' : 'down'}"></span>${up ? 'connected to' : 'cannot reach'} ${health.data?.bootstrap?.join(', ') ?? ''}${health.error ? html`<div>${health.error.code}</div>` : null}</div>
    </aside>
    <main>${page}</main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('root'));
