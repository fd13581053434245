/* app.js: the mnistd dashboard. Plain JavaScript, no build step: a hash
 * router over the views (runs table, new-run form, a run's page with live
 * curves, a comparison of runs, the drawing pad, the dataset gallery, the
 * named models with their versions and aliases, the hyperparameter
 * searches with their trials, scatter plots and curves, the nodes that
 * share the database with the runs each trains), all
 * talking to the JSON API of the same server. Charts are uPlot (embedded
 * in the binary, served from /static). */
'use strict';

(function () {
  var view = document.getElementById('view');

  /* ------------------------------------------------------------ helpers */

  /* h('div.card#id', {attrs}, children...): a small DOM builder. */
  function h(spec, attrs) {
    var m = /^([a-z0-9]+)([^]*)$/i.exec(spec);
    var el = document.createElement(m[1]);
    (m[2].match(/[.#][^.#]+/g) || []).forEach(function (p) {
      if (p[0] === '.') el.classList.add(p.slice(1)); else el.id = p.slice(1);
    });
    var kids = Array.prototype.slice.call(arguments, 2);
    if (attrs !== undefined && attrs !== null &&
        (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
      kids.unshift(attrs);
      attrs = null;
    }
    if (attrs) Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === undefined || v === null || v === false) return;
      if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'text') el.textContent = v;
      else if (k in el && k !== 'list' && k !== 'type') el[k] = v;
      else el.setAttribute(k, v === true ? '' : v);
    });
    (function add(list) {
      list.forEach(function (c) {
        if (c === null || c === undefined || c === false) return;
        if (Array.isArray(c)) add(c);
        else el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
      });
    })(kids);
    return el;
  }

  function fmt(x, digits) {
    if (x === null || x === undefined || Number.isNaN(x)) return '—';
    return Number(x).toFixed(digits === undefined ? 4 : digits);
  }
  function pct(x) { return x === null || x === undefined ? '—' : (100 * x).toFixed(1) + '%'; }
  function active(status) { return status === 'queued' || status === 'running'; }
  function hiddenOf(run) {
    var p = run.params || {};
    if (run.model === 'cnn')
      return (p.conv_layers || []).map(function (c) {
        return c.filters + 'x' + c.kernel + (c.pool > 1 ? '/' + c.pool : '');
      }).join(' ') + ' [' + (p.hidden_units || []).join(', ') + ']';
    return run.model === 'dnn' ? '[' + (p.hidden_units || []).join(', ') + ']' : '—';
  }
  function runTitle(run) {
    return 'Run ' + run.id + ' · ' + run.model + (run.model !== 'linear' ? ' ' + hiddenOf(run) : '') +
      (run.dataset && run.dataset !== 'mnist' ? ' on ' + run.dataset : '');
  }
  function badge(status) { return h('span.badge.st-' + status, status); }

  /* ------------------------------------------------------------ the API */

  function ApiError(status, code, message) {
    this.status = status;
    this.code = code;
    this.message = message;
  }
  ApiError.prototype.toString = function () { return this.message; };

  var api = {
    /* the bearer token: for this tab's session only (sessionStorage),
     * never kept on disk across browser restarts */
    token: sessionStorage.getItem('mnistd.token') || '',
    me: null,         /* GET /me: {name, admin}, once known */
    headers: function (extra) {
      var hd = Object.assign({}, extra || {});
      if (api.token) hd.Authorization = 'Bearer ' + api.token;
      return hd;
    },
    req: function (method, path, body, signal) {
      var opts = { method: method, headers: api.headers(), signal: signal };
      if (body !== undefined) {
        opts.body = JSON.stringify(body);
        opts.headers['Content-Type'] = 'application/json';
      }
      return fetch(path, opts).then(function (r) {
        return r.text().then(function (text) {
          var data = null;
          try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
          if (r.status === 401) askToken();
          if (!r.ok) {
            var err = data && data.error ? data.error : { code: 'http_' + r.status, message: text || r.statusText };
            throw new ApiError(r.status, err.code, err.message);
          }
          return data;
        });
      });
    },
    get: function (p, signal) { return api.req('GET', p, undefined, signal); },
    post: function (p, b) { return api.req('POST', p, b === undefined ? {} : b); },
    put: function (p, b) { return api.req('PUT', p, b); },
    del: function (p) { return api.req('DELETE', p); }
  };

  function askToken() {
    var bar = document.getElementById('token-bar');
    bar.hidden = false;
    document.getElementById('token-input').focus();
  }
  document.getElementById('token-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var input = document.getElementById('token-input');
    api.token = input.value.trim();
    input.value = '';
    sessionStorage.setItem('mnistd.token', api.token);
    document.getElementById('token-bar').hidden = true;
    loadMe().then(route);
  });
  document.getElementById('who-change').addEventListener('click', askToken);

  /* Who this tab acts as (GET /me), shown in the header: the user's name,
   * "(admin)" for an admin; nothing when the server has no users and no
   * token. Resolves once known (or refused: the token bar is then up). */
  function loadMe() {
    return api.get('/me').then(function (me) {
      api.me = me;
      var who = document.getElementById('who');
      who.hidden = me.name === null;
      document.getElementById('who-name').textContent =
        (me.name || '') + (me.admin ? ' (admin)' : '');
    }, function () { api.me = null; document.getElementById('who').hidden = true; });
  }

  /* Sets an <img>'s picture: directly, or through fetch when a token must
   * be sent (an <img> cannot send headers). */
  function setImg(img, url) {
    if (!api.token) { img.src = url; return; }
    fetch(url, { headers: api.headers() }).then(function (r) {
      if (!r.ok) throw new Error(r.status);
      return r.blob();
    }).then(function (b) { img.src = URL.createObjectURL(b); })
      .catch(function () { img.alt = 'not available'; img.dispatchEvent(new Event('error')); });
  }

  /* Server-Sent Events over fetch (so that a token can be sent): calls
   * on(event, data) per event, and onClose(ended) when the stream closes.
   * Reconnects with Last-Event-ID when the stream closes without an end. */
  function streamEvents(path, on, onClose) {
    var ctl = new AbortController(), lastId = null, ended = false, stopped = false;
    function connect() {
      var hd = api.headers({ Accept: 'text/event-stream' });
      if (lastId) hd['Last-Event-ID'] = lastId;
      fetch(path, { headers: hd, signal: ctl.signal }).then(function (r) {
        if (!r.ok) {
          return r.json().catch(function () { return null; }).then(function (d) {
            throw new ApiError(r.status, d && d.error && d.error.code, d && d.error ? d.error.message : r.statusText);
          });
        }
        var reader = r.body.getReader(), dec = new TextDecoder(), buf = '';
        function pump() {
          return reader.read().then(function (res) {
            if (res.done) return;
            buf += dec.decode(res.value, { stream: true }).replace(/\r\n?/g, '\n');
            var i;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              var block = buf.slice(0, i), ev = 'message', data = [];
              buf = buf.slice(i + 2);
              block.split('\n').forEach(function (line) {
                if (!line || line[0] === ':') return;
                var c = line.indexOf(':'), f = c < 0 ? line : line.slice(0, c);
                var v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
                if (f === 'event') ev = v;
                else if (f === 'data') data.push(v);
                else if (f === 'id') lastId = v;
              });
              if (!data.length) continue;
              var obj = null;
              try { obj = JSON.parse(data.join('\n')); } catch (e) { continue; }
              if (ev === 'end') ended = true;
              on(ev, obj);
            }
            return pump();
          });
        }
        return pump();
      }).then(function () {
        if (stopped) return;
        if (ended) { if (onClose) onClose(true); return; }
        setTimeout(function () { if (!stopped) connect(); }, 3000);
      }, function (err) {
        if (stopped || err.name === 'AbortError') return;
        if (err instanceof ApiError && err.status < 500) { if (onClose) onClose(false, err); return; }
        setTimeout(function () { if (!stopped) connect(); }, 3000);
      });
    }
    connect();
    return function stop() { stopped = true; ctl.abort(); };
  }

  /* ------------------------------------------------------------ charts */

  var COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2',
                '#ca8a04', '#db2777', '#4b5563', '#65a30d'];

  /* A line chart over steps in el; series: [{label, stroke}]. Returns
   * {u, set(x, ys)}; el.dataset.points holds the x points drawn. */
  function lineChart(el, title, yLabel, series, opts) {
    opts = opts || {};
    var height = opts.height || 260;
    function width() { return Math.max(240, el.clientWidth || 320); }
    var u = new uPlot({
      title: title,
      width: width(),
      height: height,
      scales: { x: { time: false }, y: opts.y || {} },
      axes: [{ label: 'step' }, { label: yLabel, size: 60 }],
      legend: { live: true },
      series: [{ label: 'step' }].concat(series.map(function (s) {
        return { label: s.label, stroke: s.stroke, width: 2, points: { show: true, size: 6 },
                 spanGaps: true, value: function (u, v) { return v === null || v === undefined ? '—' : v.toFixed(4); } };
      }))
    }, [[]].concat(series.map(function () { return []; })), el);
    var ro = new ResizeObserver(function () { u.setSize({ width: width(), height: height }); });
    ro.observe(el);
    el.dataset.points = '0';
    return {
      u: u,
      set: function (xs, ys) {
        u.setData([xs].concat(ys));
        el.dataset.points = String(xs.length);
      },
      destroy: function () { ro.disconnect(); u.destroy(); }
    };
  }

  /* ------------------------------------------------------------ router */

  var cleanup = [];
  function onLeave(fn) { cleanup.push(fn); }
  function every(ms, fn) { var t = setInterval(fn, ms); onLeave(function () { clearInterval(t); }); }

  function route() {
    cleanup.splice(0).forEach(function (fn) { try { fn(); } catch (e) { /* leaving anyway */ } });
    var hash = location.hash.replace(/^#\/?/, '') || 'runs';
    var parts = hash.split('/');
    document.querySelectorAll('[data-nav]').forEach(function (a) {
      a.classList.toggle('current', a.dataset.nav === parts[0]);
    });
    view.textContent = '';
    view.dataset.view = parts[0];
    var v = {
      runs: viewRuns,
      new: viewNew,
      compare: viewCompare,
      draw: viewDraw,
      gallery: viewGallery,
      models: viewModels,
      sweeps: viewSweeps,
      nodes: viewNodes
    };
    if (parts[0] === 'runs' && parts[1]) return viewRun(parts[1]);
    if (parts[0] === 'sweeps' && parts[1]) return viewSweep(parts[1]);
    (v[parts[0]] || viewRuns)(parts[1]);
  }
  window.addEventListener('hashchange', route);

  function errorBox(err) {
    return h('p.error', { role: 'alert' }, String(err && err.message ? err.message : err));
  }

  /* ------------------------------------------------------------ runs */

  var sortState = { key: 'id', dir: -1 };
  var selected = new Set();
  /* The runs shown: a user's own always (the server lists no other's);
   * an admin's own by default ("mine"), everyone's (''), or one owner's.
   * owners: every owner seen in an unfiltered list, for the filter. */
  var ownerFilter = 'mine';
  var owners = new Set();

  var COLUMNS = [
    { key: 'id', label: 'Run', val: function (r) { return Number(r.id); } },
    { key: 'status', label: 'Status', val: function (r) { return r.status; } },
    /* shown to an admin, who may see several users' runs */
    { key: 'owner', label: 'Owner', cls: 'owner', val: function (r) { return r.owner || ''; } },
    { key: 'model', label: 'Model', val: function (r) { return r.model + hiddenOf(r); } },
    { key: 'optimizer', label: 'Optimizer', cls: 'opt', val: function (r) { return r.params.optimizer; } },
    { key: 'lr', label: 'LR', cls: 'opt', val: function (r) { return r.params.learning_rate; } },
    { key: 'steps', label: 'Steps', cls: 'opt', val: function (r) { return r.params.steps; } },
    { key: 'batch', label: 'Batch', cls: 'opt2', val: function (r) { return r.params.batch_size; } },
    { key: 'node', label: 'Node', cls: 'opt2', val: function (r) { return r.node; } },
    { key: 'progress', label: 'Progress', val: function (r) { return r.progress.step / r.progress.steps; } },
    { key: 'val', label: 'Val. acc.', val: function (r) { return r.validation_accuracy; } },
    { key: 'test', label: 'Test acc.', val: function (r) { return r.test_accuracy; } }
  ];

  function viewRuns() {
    var msg = h('div.msg');
    var compareBtn = h('button', { type: 'button', disabled: true, onclick: function () {
      location.hash = '#/compare/' + Array.from(selected).join(',');
    } }, 'Compare selected');
    var tbody = h('tbody');
    var thead = h('thead');
    var table = h('table.runs#runs-table', thead, tbody);
    var runs = [];
    var me = api.me || { name: null, admin: true };
    /* an admin named by a user can filter by owner; the shared --token
     * and a server without users own nothing, so they see everyone's */
    var canFilter = me.admin && me.name !== null && me.name !== 'token';
    var filter = h('select#owner-filter', { 'aria-label': 'owner', onchange: function () {
      ownerFilter = filter.value;
      load();
    } });
    function fillFilter() {
      filter.textContent = '';
      [['mine', 'My runs'], ['', 'Everyone']].concat(Array.from(owners).sort()
        .filter(function (o) { return o !== me.name; })
        .map(function (o) { return [o, o + "'s runs"]; }))
        .forEach(function (o) {
          filter.appendChild(h('option', { value: o[0], selected: o[0] === ownerFilter }, o[1]));
        });
    }
    var title = h('h1', me.name !== null && me.name !== 'token' && !canFilter ? 'My runs' : 'Runs');
    if (me.admin && me.name !== null) table.classList.add('with-owner');
    view.appendChild(h('section.card',
      h('div.toolbar', title, canFilter ? filter : null, h('span.grow'),
        h('a.button', { href: '#/new' }, 'New run'), compareBtn),
      msg,
      h('div.scroll', table),
      h('p.hint', 'Click a column to sort; tick two or more runs to compare their validation curves.')));

    function header() {
      thead.textContent = '';
      thead.appendChild(h('tr', h('th', h('span.sr', 'select')), COLUMNS.map(function (c) {
        var dir = sortState.key === c.key ? (sortState.dir > 0 ? 'ascending' : 'descending') : 'none';
        return h('th' + (c.cls ? '.' + c.cls : ''), { 'aria-sort': dir },
          h('button.sort', { type: 'button', dataset: { key: c.key }, onclick: function () {
            sortState.dir = sortState.key === c.key ? -sortState.dir : 1;
            sortState.key = c.key;
            render();
          } }, c.label, h('span.arrow', dir === 'ascending' ? '▲' : dir === 'descending' ? '▼' : '')));
      }), h('th', 'Actions')));
    }

    function render() {
      header();
      var col = COLUMNS.filter(function (c) { return c.key === sortState.key; })[0];
      var sorted = runs.slice().sort(function (a, b) {
        var x = col.val(a), y = col.val(b);
        if (x === y) return 0;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : 1) * sortState.dir;
      });
      tbody.textContent = '';
      sorted.forEach(function (r) {
        var p = r.progress;
        var frac = p.steps ? p.step / p.steps : 0;
        tbody.appendChild(h('tr', { dataset: { id: r.id, status: r.status } },
          h('td', h('input', { type: 'checkbox', 'aria-label': 'select run ' + r.id,
            checked: selected.has(r.id), onchange: function (e) {
              if (e.target.checked) selected.add(r.id); else selected.delete(r.id);
              compareBtn.disabled = selected.size < 2;
            } })),
          h('td', h('a', { href: '#/runs/' + r.id }, r.id)),
          h('td', badge(r.status)),
          h('td.owner', r.owner || '—'),
          h('td', r.model, r.model !== 'linear' ? h('small', ' ' + hiddenOf(r)) : null),
          h('td.opt', r.params.optimizer),
          h('td.opt', r.params.learning_rate),
          h('td.opt', r.params.steps),
          h('td.opt2', r.params.batch_size),
          h('td.opt2.node', { title: r.attempts > 1 ? r.attempts + ' attempts' : '' },
            r.node || '—'),
          h('td', h('div.bar', { title: p.step + ' / ' + p.steps + ' steps' },
            h('div.fill', { style: 'width:' + (100 * frac).toFixed(1) + '%' })),
            h('small', p.period + '/' + p.periods)),
          h('td', pct(r.validation_accuracy)),
          h('td', pct(r.test_accuracy)),
          h('td.actions',
            active(r.status) ? h('button.small', { type: 'button', onclick: function () {
              api.post('/runs/' + r.id + '/cancel').then(load, showErr);
            } }, 'Cancel') : null,
            !active(r.status) ? h('button.small.danger', { type: 'button', onclick: function () {
              if (!confirm('Delete run ' + r.id + ' and its checkpoints?')) return;
              selected.delete(r.id);
              api.del('/runs/' + r.id).then(load, showErr);
            } }, 'Delete') : null)));
      });
      if (!runs.length)
        tbody.appendChild(h('tr', h('td', { colSpan: COLUMNS.length + 2 }, 'No runs yet: ',
          h('a', { href: '#/new' }, 'start one'), '.')));
      compareBtn.disabled = selected.size < 2;
    }
    function showErr(e) { msg.textContent = ''; msg.appendChild(errorBox(e)); }
    function load() {
      var q = '/runs?limit=200';
      if (canFilter) {
        var o = ownerFilter === 'mine' ? me.name : ownerFilter;
        if (o) q += '&owner=' + encodeURIComponent(o);
      }
      return api.get(q).then(function (d) {
        runs = d.runs;
        if (canFilter) {
          runs.forEach(function (r) { if (r.owner) owners.add(r.owner); });
          fillFilter();
          view.dataset.owner = ownerFilter;
        }
        var ids = new Set(runs.map(function (r) { return r.id; }));
        selected.forEach(function (id) { if (!ids.has(id)) selected.delete(id); });
        msg.textContent = '';
        render();
      }, showErr);
    }
    load();
    var ticks = 0;
    every(2000, function () {
      if (document.hidden) return;
      // every 2 s while something trains, every 10 s otherwise
      if (runs.some(function (r) { return active(r.status); }) || ++ticks % 5 === 0) load();
    });
  }

  /* ------------------------------------------------------------ new run */

  var RECIPES = {
    linear: { learning_rate: 0.03, hidden_units: '', optimizer: 'adagrad' },
    dnn: { learning_rate: 0.05, hidden_units: '100, 100', optimizer: 'adagrad' },
    cnn: { learning_rate: 0.001, hidden_units: '100', optimizer: 'adam',
           conv_layers: '[{"filters": 16, "kernel": 5, "pool": 2}, {"filters": 32, "kernel": 5, "pool": 2}]' }
  };

  function viewNew() {
    var err = h('div.form-error#form-error', { role: 'alert', 'aria-live': 'assertive' });
    function field(name, label, input, help) {
      input.name = name;
      input.id = 'f-' + name;
      return h('div.field', { dataset: { field: name } },
        h('label', { htmlFor: input.id }, label), input, help ? h('small', help) : null);
    }
    function num(value, step, min) {
      return h('input', { type: 'number', value: value, step: step || 'any', min: min, inputMode: 'decimal' });
    }
    function select(opts, value) {
      return h('select', opts.map(function (o) { return h('option', { value: o, selected: o === value }, o); }));
    }
    var model = select(['linear', 'dnn', 'cnn'], 'dnn');
    var conv = h('input', { type: 'text', value: RECIPES.cnn.conv_layers, disabled: true });
    var optimizer = select(['adagrad', 'sgd', 'adam'], 'adagrad');
    var hidden = h('input', { type: 'text', value: RECIPES.dnn.hidden_units, placeholder: 'e.g. 100, 100', inputMode: 'numeric' });
    var dropout = num(0, 'any', 0);
    var lr = num(RECIPES.dnn.learning_rate, 'any', 0);
    var dataset = select(['mnist'], 'mnist');
    var form = h('form#run-form.grid', { novalidate: true },
      field('model', 'Model', model, 'softmax regression, or dense ReLU layers'),
      field('hidden_units', 'Hidden units', hidden, 'dnn, cnn: widths, comma separated'),
      field('conv_layers', 'Conv layers', conv, 'cnn only: JSON list of {filters, kernel, pool, padding}'),
      field('dropout', 'Dropout', dropout, 'dnn, cnn: 0..0.95'),
      field('optimizer', 'Optimizer', optimizer),
      field('learning_rate', 'Learning rate', lr, '0.03 linear, 0.05 dnn, 0.001 cnn'),
      field('clip_norm', 'Clip norm', num(5, 'any', 0), 'global norm; 0 = off'),
      field('steps', 'Steps', num(1000, 1, 1)),
      field('batch_size', 'Batch size', num(30, 1, 1)),
      field('periods', 'Periods', num(10, 1, 1)),
      field('dataset', 'Dataset', dataset),
      field('examples', 'Examples', num(10000, 1, 1), 'head of the dataset used'),
      field('validation_examples', 'Validation examples', num(2500, 1, 1)),
      field('seed', 'Seed', h('input', { type: 'number', step: 1, min: 0, placeholder: 'random' }), 'empty: random (recorded)'),
      h('div.field.submit', h('button#start-run', { type: 'submit' }, 'Start run'), err));

    function syncModel() {
      var r = RECIPES[model.value];
      lr.value = r.learning_rate;
      hidden.value = r.hidden_units;
      optimizer.value = r.optimizer;
      var dnn = model.value !== 'linear';
      hidden.disabled = !dnn;
      dropout.disabled = !dnn;
      if (!dnn) dropout.value = 0;
      conv.disabled = model.value !== 'cnn';
    }
    model.addEventListener('change', syncModel);
    api.get('/datasets').then(function (d) {
      var names = (d.datasets || []).map(function (x) { return x.name; });
      if (!names.length) return;
      dataset.textContent = '';
      names.forEach(function (n) { dataset.appendChild(h('option', { value: n, selected: n === 'mnist' }, n)); });
    }, function () { /* keep mnist */ });

    form.addEventListener('submit', function (e) {
      e.preventDefault();
      err.textContent = '';
      form.querySelectorAll('.invalid').forEach(function (x) { x.classList.remove('invalid'); });
      var body = { model: model.value };
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || el.name === 'model' || el.disabled) return;
        var v = el.value.trim();
        if (v === '') return;
        if (el.name === 'conv_layers') {
          try { body.conv_layers = JSON.parse(v); } catch (x) { body.conv_layers = v; }
        } else if (el.name === 'hidden_units') {
          body.hidden_units = v.split(/[\s,]+/).filter(Boolean).map(function (t) {
            return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
          });
        } else if (el.type === 'number') {
          body[el.name] = Number(v);
        } else {
          body[el.name] = v;
        }
      });
      if (body.model === 'linear') { delete body.hidden_units; delete body.dropout; }
      else if (body.dropout === 0) delete body.dropout;
      var btn = document.getElementById('start-run');
      btn.disabled = true;
      api.post('/runs', body).then(function (run) {
        location.hash = '#/runs/' + run.id;
      }, function (e2) {
        btn.disabled = false;
        err.textContent = e2.message;
        var m = /^(\w+)/.exec(e2.message || '');
        var f = m && form.querySelector('[data-field="' + m[1] + '"]');
        if (!f && e2.message) {
          var q = /'(\w+)'/.exec(e2.message);
          f = q && form.querySelector('[data-field="' + q[1] + '"]');
        }
        if (f) f.classList.add('invalid');
      });
    });
    view.appendChild(h('section.card',
      h('h1', 'Start a training run'),
      h('p.hint', 'Defaults are the exercise\u2019s recipes: Adagrad, 1000 steps, batch 30, clip norm 5, 10 periods; ' +
        'linear at learning rate 0.03, dnn [100, 100] at 0.05.'),
      form));
  }

  /* ------------------------------------------------------------ a run */

  function viewRun(id) {
    var head = h('div.toolbar');
    var progress = h('div.progress');
    var msg = h('div.msg');
    var lossEl = h('div.chart#loss-chart');
    var accEl = h('div.chart#acc-chart');
    var periodsBody = h('tbody');
    var pics = h('div.pics#pictures');
    var evalOut = h('div#eval-result');
    var params = h('dl.params');
    view.appendChild(h('section.card', head, progress, msg));
    view.appendChild(h('section.card', h('h2', 'Loss per period'), lossEl, accEl,
      h('details', h('summary', 'Periods'), h('div.scroll', h('table.periods',
        h('thead', h('tr', ['period', 'step', 'train log loss', 'validation log loss', 'validation accuracy', 'seconds']
          .map(function (t) { return h('th', t); }))), periodsBody)))));
    view.appendChild(h('section.card', h('h2', 'Pictures'), pics, evalOut));
    // the first layer's weights at the periods that kept a snapshot
    // (GET /runs/<id>/snapshots), one at a time under a slider
    var snapSlider = h('input#snap-slider', { type: 'range', min: 0, max: 0, step: 1, value: 0,
      'aria-label': 'period of the weights shown' });
    var snapLabel = h('span#snap-label');
    var snapImg = h('img', { alt: 'first-layer weights at a period' });
    var snapCard = h('section.card#snapshots', { hidden: true }, h('h2', 'Weights over training'),
      h('p.hint', 'The first layer\u2019s weights at the end of each period that kept them ' +
        '(at most 100 a run and 32 MiB of them, 8-bit): drag to watch them sharpen from noise to strokes.'),
      h('div.slider', snapSlider, snapLabel), h('div.pics', h('figure#snap-fig', snapImg)));
    view.appendChild(snapCard);
    view.appendChild(h('section.card', h('h2', 'Parameters'), params));

    var loss = lineChart(lossEl, 'log loss', 'log loss', [
      { label: 'training', stroke: COLORS[0] }, { label: 'validation', stroke: COLORS[1] }]);
    var acc = lineChart(accEl, 'validation accuracy', 'accuracy', [
      { label: 'validation accuracy', stroke: COLORS[2] }], { height: 200 });
    onLeave(function () { loss.destroy(); acc.destroy(); });

    var periods = [];     // by period number, from the stream
    var run = null, stop = null, picsShown = false;

    function drawCurves() {
      var ps = periods.filter(Boolean);
      var xs = ps.map(function (p) { return p.step; });
      loss.set(xs, [ps.map(function (p) { return p.train_log_loss; }),
                    ps.map(function (p) { return p.validation_log_loss; })]);
      acc.set(xs, [ps.map(function (p) { return p.validation_accuracy; })]);
      periodsBody.textContent = '';
      ps.forEach(function (p) {
        periodsBody.appendChild(h('tr', h('td', p.period), h('td', p.step), h('td', fmt(p.train_log_loss)),
          h('td', fmt(p.validation_log_loss)), h('td', pct(p.validation_accuracy)), h('td', fmt(p.seconds, 2))));
      });
    }
    function showProgress(p) {
      var frac = p.steps ? p.step / p.steps : 0;
      progress.textContent = '';
      progress.appendChild(h('div.bar.big', h('div.fill', { style: 'width:' + (100 * frac).toFixed(1) + '%' })));
      progress.appendChild(h('p#progress-text', 'step ' + p.step + ' / ' + p.steps + ' · period ' + p.period + ' / ' + p.periods +
        (periods.length ? ' · validation accuracy ' + pct(periods[periods.length - 1].validation_accuracy) : '')));
    }
    function picture(src, caption, alt) {
      var img = h('img', { alt: alt, loading: 'lazy' });
      var fig = h('figure', img, h('figcaption', caption));
      img.addEventListener('error', function () { fig.classList.add('missing'); });
      img.addEventListener('load', function () { fig.classList.remove('missing'); });
      setImg(img, src);
      return fig;
    }
    function showPictures() {
      if (picsShown || !run || run.status !== 'succeeded') return;
      picsShown = true;
      pics.textContent = '';
      var wfig = picture('/runs/' + id + '/weights.png?layer=0', run.model === 'cnn'
        ? 'first convolution\u2019s filters: one tile per filter'
        : run.model === 'dnn'
        ? 'first hidden layer\u2019s weights: one 28x28 picture per unit'
        : 'weights: one 28x28 picture per class', 'weights');
      wfig.id = 'weights-fig';
      var cfig = picture('/runs/' + id + '/confusion.png', 'validation confusion matrix (rows: true label)', 'confusion matrix');
      cfig.id = 'confusion-fig';
      var lfig = picture('/runs/' + id + '/loss.png', 'loss curves', 'loss curves');
      lfig.id = 'loss-fig';
      pics.appendChild(cfig);
      pics.appendChild(wfig);
      pics.appendChild(lfig);
    }
    var snaps = [], snapBusy = false, snapAgain = false;
    function showSnap() {
      var sn = snaps[Number(snapSlider.value)];
      if (!sn) return;
      snapLabel.textContent = 'period ' + sn.period + (run ? ' of ' + run.params.periods : '') + ' \u00b7 step ' + sn.step;
      snapImg.dataset.period = sn.period;
      setImg(snapImg, '/runs/' + id + '/weights.png?period=' + sn.period);
    }
    snapSlider.addEventListener('input', showSnap);
    /* Fetches the list again (once at a time; a call meanwhile fetches
     * once more after it); a slider at the newest follows new ones. */
    function loadSnaps() {
      if (snapBusy) { snapAgain = true; return; }
      snapBusy = true;
      api.get('/runs/' + id + '/snapshots').then(function (d) {
        var atEnd = Number(snapSlider.value) >= snaps.length - 1;
        if (d.snapshots.length !== snaps.length) {
          snaps = d.snapshots;
          snapCard.hidden = !snaps.length;
          snapSlider.max = Math.max(0, snaps.length - 1);
          if (atEnd) snapSlider.value = snapSlider.max;
          showSnap();
        }
      }, function () { /* the card stays as it was */ }).then(function () {
        snapBusy = false;
        if (snapAgain) { snapAgain = false; loadSnaps(); }
      });
    }
    function renderHead() {
      head.textContent = '';
      head.appendChild(h('h1#run-title', runTitle(run), ' ', badge(run.status)));
      head.appendChild(h('span.grow'));
      if (active(run.status))
        head.appendChild(h('button', { type: 'button', onclick: function () {
          api.post('/runs/' + id + '/cancel').then(refresh, showErr);
        } }, 'Cancel'));
      if (run.status === 'succeeded') {
        head.appendChild(h('button#evaluate', { type: 'button', onclick: evaluate }, 'Evaluate on test set'));
        head.appendChild(h('a.button', { href: '#/draw/' + id }, 'Draw'));
        head.appendChild(h('a.button', { href: '#/gallery/' + id }, 'Mistakes'));
        head.appendChild(h('button#register-version', { type: 'button', onclick: registerForm },
          'Register as a version'));
      }
      if (!active(run.status))
        head.appendChild(h('button.danger', { type: 'button', onclick: function () {
          if (!confirm('Delete run ' + id + '?')) return;
          api.del('/runs/' + id).then(function () { location.hash = '#/runs'; }, showErr);
        } }, 'Delete'));
      params.textContent = '';
      Object.keys(run.params).forEach(function (k) {
        var v = run.params[k];
        params.appendChild(h('dt', k));
        params.appendChild(h('dd', Array.isArray(v) ? '[' + v.join(', ') + ']' : String(v)));
      });
      [['validation accuracy', pct(run.validation_accuracy)], ['validation log loss', fmt(run.validation_log_loss)],
       ['test accuracy', pct(run.test_accuracy)], ['created', run.created_at], ['started', run.started_at],
       ['finished', run.finished_at], ['error', run.error]].forEach(function (kv) {
        if (kv[1] === null || kv[1] === undefined) return;
        params.appendChild(h('dt', kv[0]));
        params.appendChild(h('dd', kv[1]));
      });
      if (!active(run.status)) showProgress(run.progress);
    }
    function evaluate() {
      var b = document.getElementById('evaluate');
      b.disabled = true;
      evalOut.textContent = 'Evaluating on the 10,000 test images…';
      api.post('/runs/' + id + '/evaluate', { dataset: 'mnist-test' }).then(function (e) {
        evalOut.textContent = '';
        evalOut.appendChild(h('p.result', 'Test set (' + e.dataset + ', ' + e.examples + ' examples): accuracy ',
          h('strong#test-accuracy', pct(e.accuracy)), ', log loss ' + fmt(e.log_loss)));
        var tfig = picture('/runs/' + id + '/confusion.png?set=test', 'test-set confusion matrix', 'test confusion matrix');
        evalOut.appendChild(h('div.pics', tfig));
        b.disabled = false;
        refresh();
      }, function (err) { b.disabled = false; evalOut.textContent = ''; evalOut.appendChild(errorBox(err)); });
    }
    function showErr(e) { msg.textContent = ''; msg.appendChild(errorBox(e)); }
    /* "Register as a version": the run becomes the next version of a named
     * model (created if it does not exist yet), then the model's page */
    function registerForm() {
      if (document.getElementById('register-form')) return;
      var names = h('datalist#model-names');
      var input = h('input#register-model', { required: true, list: 'model-names', placeholder: 'model name',
        pattern: '[a-z0-9][a-z0-9_\\-]*', 'aria-label': 'model name' });
      var form = h('form#register-form.inline', input, names,
        h('button#register-submit', { type: 'submit' }, 'Register'));
      api.get('/models').then(function (d) {
        d.models.forEach(function (m) { names.appendChild(h('option', { value: m.name })); });
      }, function () { /* a new name still works */ });
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        var name = input.value.trim();
        api.get('/models/' + encodeURIComponent(name)).catch(function (err) {
          if (err.status !== 404) throw err;
          return api.post('/models', { name: name });
        }).then(function () {
          return api.post('/models/' + encodeURIComponent(name) + '/versions', { run: id });
        }).then(function () { location.hash = '#/models/' + name; }, showErr);
      });
      head.appendChild(form);
      input.focus();
    }
    function refresh() {
      return api.get('/runs/' + id).then(function (r) {
        run = r;
        msg.textContent = '';
        renderHead();
        if (!active(r.status)) {
          // the stored periods are the truth once the run ended
          r.periods.forEach(function (p) { periods[p.period - 1] = p; });
          periods.length = r.periods.length;
          drawCurves();
        }
        showPictures();
        loadSnaps();
      }, showErr);
    }
    refresh().then(function () {
      if (!run) return;
      stop = streamEvents('/runs/' + id + '/events', function (ev, d) {
        if (ev === 'period') {
          periods[d.period - 1] = d;
          drawCurves();
          loadSnaps();
        } else if (ev === 'progress') {
          if (run && run.status === 'queued') { run.status = 'running'; renderHead(); }
          showProgress(d);
        } else if (ev === 'end') {
          refresh();
        }
      }, function (ended, err) { if (err) showErr(err); });
      onLeave(function () { if (stop) stop(); });
    });
  }

  /* ------------------------------------------------------------ compare */

  function viewCompare(arg) {
    var ids = (arg || '').split(',').filter(Boolean);
    var lossEl = h('div.chart#compare-loss'), accEl = h('div.chart#compare-acc');
    var legend = h('ul.legend');
    var msg = h('div.msg');
    view.appendChild(h('section.card', h('div.toolbar', h('h1', 'Compare runs ' + ids.join(', ')),
      h('span.grow'), h('a.button', { href: '#/runs' }, 'Back to runs')), msg, legend, lossEl, accEl));
    if (ids.length < 2) { msg.appendChild(errorBox('Tick two or more runs in the runs table.')); return; }
    var series = ids.map(function (rid, i) { return { label: 'run ' + rid, stroke: COLORS[i % COLORS.length] }; });
    var loss = lineChart(lossEl, 'validation log loss', 'log loss', series);
    var acc = lineChart(accEl, 'validation accuracy', 'accuracy', series, { height: 220 });
    onLeave(function () { loss.destroy(); acc.destroy(); });
    // each run with its history (GET /runs/<id>); an ended run's history no
    // longer changes, so only active runs are fetched again
    var have = [];
    function load() {
      return Promise.all(ids.map(function (rid, i) {
        return have[i] && !active(have[i].status) ? have[i] : api.get('/runs/' + rid);
      })).then(function (runs) {
        have = runs;
        // one x axis: the union of every run's period-end steps
        var xs = Array.from(new Set([].concat.apply([], runs.map(function (r) {
          return r.periods.map(function (p) { return p.step; });
        })))).sort(function (a, b) { return a - b; });
        function col(key) {
          return runs.map(function (r) {
            var by = {};
            r.periods.forEach(function (p) { by[p.step] = p[key]; });
            return xs.map(function (x) { return x in by ? by[x] : null; });
          });
        }
        loss.set(xs, col('validation_log_loss'));
        acc.set(xs, col('validation_accuracy'));
        legend.textContent = '';
        runs.forEach(function (r, i) {
          var p = r.params;
          legend.appendChild(h('li', h('span.swatch', { style: 'background:' + COLORS[i % COLORS.length] }),
            h('a', { href: '#/runs/' + r.id }, runTitle(r)), ' ', badge(r.status),
            h('small', ' ' + p.optimizer + ', lr ' + p.learning_rate + ', ' + p.steps + ' steps, batch ' + p.batch_size +
              ' · val. acc. ' + pct(r.validation_accuracy))));
        });
        return runs;
      }).catch(function (e) { msg.textContent = ''; msg.appendChild(errorBox(e)); return []; });
    }
    load();
    every(2000, function () { if (!have.length || have.some(function (r) { return active(r.status); })) load(); });
  }

  /* ------------------------------------------------------------ runs to choose */

  function succeededRuns() {
    return api.get('/runs?status=succeeded&limit=200').then(function (d) { return d.runs; });
  }
  /* The run to offer first: the most accurate on validation (a toy run
   * started last should not be the one a student draws against). */
  function bestRun(runs) {
    var best = null;
    runs.forEach(function (r) {
      if (!best || (r.validation_accuracy || 0) > (best.validation_accuracy || 0)) best = r;
    });
    return best && best.id;
  }
  function runSelect(runs, chosen, allowNone) {
    var sel = h('select');
    if (allowNone) sel.appendChild(h('option', { value: '' }, '— none —'));
    runs.forEach(function (r) {
      sel.appendChild(h('option', { value: r.id, selected: r.id === chosen },
        runTitle(r) + ' · ' + pct(r.validation_accuracy)));
    });
    return sel;
  }

  /* ------------------------------------------------------------ draw */

  function viewDraw(chosen) {
    var canvas = h('canvas#pad', { width: 280, height: 280, 'aria-label': 'drawing pad: draw a digit' });
    var preview = h('canvas#preview', { width: 28, height: 28, 'aria-label': 'what the model sees' });
    var predicted = h('div.predicted#predicted', '?');
    var bars = h('div.probs#probs');
    var msg = h('div.msg');
    var runBox = h('span');
    var pad = null, sel = null, seq = 0;
    for (var d = 0; d < 10; d++)
      bars.appendChild(h('div.prob', { dataset: { digit: d } }, h('span.digit', d),
        h('div.bar', h('div.fill', { style: 'width:0%' })), h('span.val', '')));
    function predict() {
      var px = pad.pixels();
      MnistPad.drawMnist(preview, px);
      if (!px) { predicted.textContent = '?'; return; }
      if (!sel || !sel.value) { msg.textContent = ''; msg.appendChild(errorBox('Train a run first: there is no succeeded run.')); return; }
      var mine = ++seq;
      predicted.classList.add('busy');
      api.post('/predict', { run: sel.value, pixels: Array.from(px, function (v) { return Math.round(v * 1000) / 1000; }) })
        .then(function (res) {
          if (mine !== seq) return;
          var p = res.predictions[0];
          msg.textContent = '';
          predicted.classList.remove('busy');
          predicted.textContent = String(p.class);
          predicted.dataset.class = String(p.class);
          predicted.dataset.seq = String(mine);
          bars.querySelectorAll('.prob').forEach(function (row, i) {
            var v = p.probabilities[i];
            row.classList.toggle('best', i === p.class);
            row.querySelector('.fill').style.width = (100 * v).toFixed(1) + '%';
            row.querySelector('.val').textContent = (100 * v).toFixed(1) + '%';
          });
        }, function (e) { predicted.classList.remove('busy'); msg.textContent = ''; msg.appendChild(errorBox(e)); });
    }
    view.appendChild(h('section.card',
      h('div.toolbar', h('h1', 'Draw a digit'), h('span.grow'), h('label', 'Model ', runBox)),
      msg,
      h('div.draw',
        h('div.padbox', canvas, h('div.row',
          h('button#clear', { type: 'button', onclick: function () {
            pad.clear(); MnistPad.drawMnist(preview, null); predicted.textContent = '?'; delete predicted.dataset.class;
            bars.querySelectorAll('.fill').forEach(function (f) { f.style.width = '0%'; });
            bars.querySelectorAll('.val').forEach(function (f) { f.textContent = ''; });
          } }, 'Clear'),
          h('small', 'Draw with a mouse, a pen or a finger; the model answers after each stroke.'))),
        h('div.answer', h('div.row', predicted, h('figure.preview', preview, h('figcaption', 'as the model sees it (28x28)'))),
          bars))));
    pad = MnistPad.Pad(canvas, predict);
    MnistPad.drawMnist(preview, null);
    succeededRuns().then(function (runs) {
      sel = runSelect(runs, chosen || bestRun(runs));
      sel.id = 'draw-run';
      sel.addEventListener('change', function () { if (pad.pixels()) predict(); });
      runBox.appendChild(sel);
      if (!runs.length) msg.appendChild(errorBox('No succeeded run yet: start one and come back.'));
    }, function (e) { msg.appendChild(errorBox(e)); });
  }

  /* ------------------------------------------------------------ gallery */

  function viewGallery(chosen) {
    var msg = h('div.msg');
    var grid = h('div.gallery#gallery');
    var summary = h('p.summary#gallery-summary');
    var ds = h('select#g-dataset', h('option', { value: 'mnist-test' }, 'mnist-test'), h('option', { value: 'mnist' }, 'mnist'));
    var start = h('input#g-start', { type: 'number', value: 0, min: 0, step: 1, inputMode: 'numeric' });
    var count = h('select#g-count', [24, 48, 96, 192].map(function (n) { return h('option', { value: n, selected: n === 48 }, n); }));
    var only = h('input#g-mistakes', { type: 'checkbox' });
    var runBox = h('span');
    var del = h('button#g-delete', { type: 'button', disabled: true, title: 'Only uploaded datasets can be deleted',
      onclick: deleteDataset }, 'Delete dataset');
    var uploaded = new Set();
    var sel = null, gen = 0;
    view.appendChild(h('section.card',
      h('h1', 'Dataset examples'),
      h('form.controls', { onsubmit: function (e) { e.preventDefault(); load(); } },
        h('label', 'Dataset ', ds), h('label', 'From ', start), h('label', 'Count ', count),
        h('label', 'Run ', runBox), h('label', only, ' mistakes only'),
        h('button#g-load', { type: 'submit' }, 'Show'), del),
      msg, summary, grid));
    only.addEventListener('change', function () { grid.classList.toggle('only-wrong', only.checked); });
    ds.addEventListener('change', function () { del.disabled = !uploaded.has(ds.value); });

    /* DELETE /datasets/<name> of the uploaded dataset shown; the server's
     * refusal (a run still training on it) is shown as it says it */
    function deleteDataset() {
      var name = ds.value;
      if (!uploaded.has(name)) return;
      if (!confirm('Delete dataset ' + name + '? Runs that ended on it keep their results.')) return;
      del.disabled = true;
      msg.textContent = '';
      api.del('/datasets/' + encodeURIComponent(name)).then(function () {
        uploaded.delete(name);
        var opt = ds.querySelector('option[value="' + CSS.escape(name) + '"]');
        if (opt) opt.remove();
        ds.value = 'mnist-test';
        load();
        msg.appendChild(h('p#g-deleted', { role: 'status' }, 'Dataset ' + name + ' deleted.'));
      }, function (e) {
        del.disabled = false;
        msg.appendChild(errorBox(e));
      });
    }

    /* fetches the JSON of examples [a, a+n), a few at a time */
    function fetchExamples(name, a, n) {
      var out = new Array(n), next = 0;
      function worker() {
        if (next >= n) return Promise.resolve();
        var i = next++;
        return api.get('/datasets/' + encodeURIComponent(name) + '/examples/' + (a + i))
          .then(function (e) { out[i] = e; return worker(); });
      }
      var ws = [];
      for (var k = 0; k < 6; k++) ws.push(worker());
      return Promise.all(ws).then(function () { return out; });
    }
    function load() {
      var mine = ++gen;
      var name = ds.value, a = Math.max(0, parseInt(start.value, 10) || 0), n = parseInt(count.value, 10);
      msg.textContent = '';
      summary.textContent = 'Loading…';
      grid.textContent = '';
      grid.dataset.state = 'loading';
      var cells = [];
      for (var i = 0; i < n; i++) {
        var img = h('img', { alt: 'example ' + (a + i), width: 56, height: 56 });
        setImg(img, '/datasets/' + encodeURIComponent(name) + '/examples/' + (a + i) + '.png');
        var cap = h('figcaption', '#' + (a + i));
        var fig = h('figure.ex', { dataset: { index: a + i } }, img, cap);
        cells.push({ fig: fig, cap: cap });
        grid.appendChild(fig);
      }
      fetchExamples(name, a, n).then(function (exs) {
        if (mine !== gen) return;
        exs.forEach(function (e, i) {
          cells[i].fig.dataset.label = e.label;
          cells[i].cap.textContent = '#' + e.index + ' · ' + e.label;
        });
        var runId = sel && sel.value;
        if (!runId) {
          summary.textContent = n + ' examples of ' + name + ' from #' + a + '. Choose a run to see its mistakes.';
          grid.dataset.state = 'done';
          return;
        }
        return api.post('/predict', { run: runId, pixels: exs.map(function (e) {
          return e.pixels.map(function (v) { return v / 255; });
        }) }).then(function (res) {
          if (mine !== gen) return;
          var wrong = 0;
          res.predictions.forEach(function (p, i) {
            var e = exs[i], ok = p.class === e.label;
            cells[i].fig.dataset.predicted = p.class;
            cells[i].fig.classList.add(ok ? 'right' : 'wrong');
            if (!ok) {
              wrong++;
              cells[i].cap.textContent = '';
              cells[i].cap.appendChild(h('span', '#' + e.index + ' true ' + e.label + ' · '));
              cells[i].cap.appendChild(h('strong', 'pred ' + p.class));
            }
          });
          summary.textContent = 'Run ' + runId + ': ' + wrong + ' mistake' + (wrong === 1 ? '' : 's') + ' in ' + n +
            ' examples (' + pct((n - wrong) / n) + ' right). Tick “mistakes only” to see just those.';
          grid.dataset.state = 'done';
        });
      }).catch(function (e) {
        if (mine !== gen) return;
        summary.textContent = '';
        grid.dataset.state = 'error';
        msg.appendChild(errorBox(e));
      });
    }
    api.get('/datasets').then(function (d) {
      (d.datasets || []).forEach(function (x) {
        if (x.name !== 'mnist' && x.name !== 'mnist-test') ds.appendChild(h('option', { value: x.name }, x.name));
        if (!x.builtin) uploaded.add(x.name);
      });
      del.disabled = !uploaded.has(ds.value);
    }, function () { /* the two built-in ones */ });
    succeededRuns().then(function (runs) {
      sel = runSelect(runs, chosen || bestRun(runs), true);
      sel.id = 'g-run';
      runBox.appendChild(sel);
      if (chosen) only.checked = false;
      load();
    }, function () { load(); });
  }

  /* ------------------------------------------------------------ models */

  /* #/models: the named models and a form to create one; #/models/<name>:
   * its versions with their runs' accuracies, its aliases, and a form that
   * points an alias at a version. */
  /* ------------------------------------------------------------ nodes */

  /* The nodes sharing the database (GET /nodes): name, alive, workers
   * busy, last heartbeat, and the runs each trains now. */
  function viewNodes() {
    var msg = h('div.msg');
    var note = h('p.note');
    var tbody = h('tbody');
    view.appendChild(h('section.card', h('div.toolbar', h('h1', 'Nodes')), msg, note,
      h('div.scroll', h('table.runs#nodes-table',
        h('thead', h('tr', h('th', 'Node'), h('th', 'State'), h('th', 'Busy'),
          h('th', 'Heartbeat'), h('th', 'Training'))),
        tbody))));
    function load() {
      api.get('/nodes').then(function (d) {
        msg.textContent = '';
        note.textContent = 'This page is served by ' + d.self + '; a node is alive while its ' +
          'heartbeat is within ' + d.lease_seconds + ' s.';
        tbody.textContent = '';
        d.nodes.forEach(function (n) {
          tbody.appendChild(h('tr', { dataset: { name: n.name, alive: String(n.alive) } },
            h('td', n.name === d.self ? h('strong', n.name) : n.name),
            h('td', h('span.badge.' + (n.alive ? 'st-running' : 'st-failed'), n.alive ? 'alive' : 'dead')),
            h('td', n.busy + ' / ' + n.workers),
            h('td', n.heartbeat_at ? new Date(n.heartbeat_at).toLocaleTimeString() : '—'),
            h('td', n.runs.length ? n.runs.map(function (id, i) {
              return [i ? ', ' : '', h('a', { href: '#/runs/' + id }, id)];
            }) : '—')));
        });
      }, function (e) { msg.textContent = ''; msg.appendChild(errorBox(e)); });
    }
    load();
    every(2000, load);
  }

  function viewModels(name) {
    var msg = h('div.msg');
    function showErr(e) { msg.textContent = ''; msg.appendChild(errorBox(e)); }
    if (name) return viewModel(name, msg, showErr);
    var tbody = h('tbody');
    var nameIn = h('input#m-name', { required: true, placeholder: 'digits', pattern: '[a-z0-9][a-z0-9_\\-]*',
      'aria-label': 'model name' });
    var descIn = h('input#m-desc', { placeholder: 'description', 'aria-label': 'description' });
    var form = h('form#model-form.inline', nameIn, descIn, h('button#create-model', { type: 'submit' }, 'Create model'));
    view.appendChild(h('section.card', h('div.toolbar', h('h1', 'Models')), msg, form,
      h('div.scroll', h('table.runs#models-table',
        h('thead', h('tr', h('th', 'Model'), h('th', 'Description'), h('th', 'Versions'), h('th', 'Latest'))),
        tbody))));
    function load() {
      api.get('/models').then(function (d) {
        tbody.textContent = '';
        d.models.forEach(function (m) {
          tbody.appendChild(h('tr', { 'data-name': m.name },
            h('td', h('a', { href: '#/models/' + m.name }, m.name)), h('td', m.description),
            h('td', String(m.versions)), h('td', m.latest_version === null ? '—' : String(m.latest_version))));
        });
        if (!d.models.length)
          tbody.appendChild(h('tr', h('td', { colspan: 4 }, 'No models yet: create one, then register a ' +
            'succeeded run as its version from the run\'s page.')));
      }, showErr);
    }
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      api.post('/models', { name: nameIn.value.trim(), description: descIn.value })
        .then(function () { nameIn.value = ''; descIn.value = ''; msg.textContent = ''; load(); }, showErr);
    });
    load();
  }

  function viewModel(name, msg, showErr) {
    var tbody = h('tbody');
    var title = h('div.toolbar', h('h1#model-title', name), h('span.grow'),
      h('button.danger', { type: 'button', onclick: function () {
        if (!confirm('Delete model ' + name + ' (its runs stay)?')) return;
        api.del('/models/' + encodeURIComponent(name)).then(function () { location.hash = '#/models'; }, showErr);
      } }, 'Delete model'),
      h('a.button', { href: '#/models' }, 'All models'));
    var desc = h('p.desc');
    var aliasIn = h('input#alias-name', { required: true, placeholder: 'production', pattern: '[a-z0-9][a-z0-9_\\-]*',
      'aria-label': 'alias' });
    var versionSel = h('select#alias-version', { 'aria-label': 'version' });
    var form = h('form#alias-form.inline', 'Point alias ', aliasIn, ' at version ', versionSel,
      h('button#set-alias', { type: 'submit' }, 'Set'));
    view.appendChild(h('section.card', title, desc, msg,
      h('div.scroll', h('table.runs#versions-table',
        h('thead', h('tr', h('th', 'Version'), h('th', 'Run'), h('th', 'Model'), h('th', 'Val. acc.'),
          h('th', 'Test acc.'), h('th', 'Aliases'))), tbody)), form));
    function load() {
      api.get('/models/' + encodeURIComponent(name)).then(function (m) {
        desc.textContent = m.description;
        tbody.textContent = '';
        versionSel.textContent = '';
        m.versions.slice().reverse().forEach(function (v) {
          var aliases = Object.keys(m.aliases).filter(function (a) { return m.aliases[a] === v.version; });
          tbody.appendChild(h('tr', { 'data-version': String(v.version) },
            h('td', String(v.version)), h('td.run', h('a', { href: '#/runs/' + v.run }, v.run)), h('td', v.model),
            h('td', pct(v.validation_accuracy)), h('td', pct(v.test_accuracy)),
            h('td.aliases', aliases.map(function (a) {
              return h('span.badge', a, ' ', h('button.link', { type: 'button', title: 'remove ' + a,
                onclick: function () {
                  api.del('/models/' + encodeURIComponent(name) + '/aliases/' + encodeURIComponent(a))
                    .then(load, showErr);
                } }, '×'));
            }))));
          versionSel.appendChild(h('option', { value: String(v.version) }, String(v.version)));
        });
        if (!m.versions.length)
          tbody.appendChild(h('tr', h('td', { colspan: 6 }, 'No versions yet: open a succeeded run and ' +
            'press “Register as a version”.')));
        form.hidden = !m.versions.length;
      }, showErr);
    }
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      api.put('/models/' + encodeURIComponent(name) + '/aliases/' + encodeURIComponent(aliasIn.value.trim()),
        { version: Number(versionSel.value) }).then(function () { aliasIn.value = ''; msg.textContent = ''; load(); },
        showErr);
    });
    load();
  }

  /* ------------------------------------------------------------ sweeps */

  /* The exercise's search (issue 17): the form's example. */
  var SWEEP_EXAMPLE = {
    base: { model: 'dnn', steps: 1000 },
    space: {
      learning_rate: { min: 0.0005, max: 0.5, scale: 'log' },
      hidden_units: { values: [[100, 100], [200, 100], [300]] }
    }
  };

  function sweepValue(v) {
    return Array.isArray(v) ? '[' + v.join(', ') + ']' :
      typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(3) : String(v);
  }

  /* #/sweeps: the sweeps, and the form that starts one */
  function viewSweeps() {
    var tbody = h('tbody');
    var msg = h('div');
    var f = {
      base: h('textarea#sw-base', { rows: 3, spellcheck: false }),
      space: h('textarea#sw-space', { rows: 6, spellcheck: false }),
      algorithm: h('select#sw-algorithm', h('option', { value: 'random' }, 'random'), h('option', { value: 'grid' }, 'grid')),
      trials: h('input#sw-trials', { type: 'number', min: 1, max: 1000, value: 12 }),
      parallel: h('input#sw-parallel', { type: 'number', min: 1, value: 2 }),
      objective: h('select#sw-objective', h('option', { value: 'validation_accuracy' }, 'validation accuracy (max)'),
        h('option', { value: 'validation_log_loss' }, 'validation log loss (min)')),
      rule: h('select#sw-rule', h('option', { value: 'median' }, 'median stopping'), h('option', { value: 'asha' }, 'ASHA'),
        h('option', { value: '' }, 'none')),
      grace: h('input#sw-grace', { type: 'number', min: 1, value: 2 }),
      seed: h('input#sw-seed', { type: 'number', min: 0, value: 1, placeholder: 'random' })
    };
    f.base.value = JSON.stringify(SWEEP_EXAMPLE.base);
    f.space.value = JSON.stringify(SWEEP_EXAMPLE.space, null, 1);
    function field(label, el, wide) {
      return h('div.field' + (wide ? '.wide' : ''), h('label', { htmlFor: el.id }, label), el);
    }
    var err = h('span#sweep-error.form-error', { role: 'alert' });
    var form = h('form#sweep-form.grid',
      field('base (POST /runs fields, JSON)', f.base, true),
      field('space (field: {"values": [...]} or {"min", "max", "scale"}), JSON', f.space, true),
      field('algorithm', f.algorithm), field('trials', f.trials), field('parallel', f.parallel),
      field('objective', f.objective), field('early stopping', f.rule), field('grace periods', f.grace),
      field('seed', f.seed),
      h('div.field.submit', h('button#start-sweep', { type: 'submit' }, 'Start sweep'), err));
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      err.textContent = '';
      var body;
      try {
        body = { base: JSON.parse(f.base.value || '{}'), space: JSON.parse(f.space.value || '{}') };
      } catch (x) { err.textContent = 'base and space must be JSON: ' + x.message; return; }
      body.algorithm = f.algorithm.value;
      if (body.algorithm === 'random' && f.trials.value) body.trials = Number(f.trials.value);
      if (f.parallel.value) body.parallel = Number(f.parallel.value);
      body.objective = f.objective.value;
      body.early_stopping = f.rule.value ? { rule: f.rule.value, grace_periods: Number(f.grace.value || 1) } : null;
      if (f.seed.value !== '') body.seed = Number(f.seed.value);
      api.post('/sweeps', body).then(function (w) { location.hash = '#/sweeps/' + w.id; },
        function (x) { err.textContent = x.message; });
    });
    view.appendChild(h('section.card', h('h1', 'Sweeps'), msg, h('div.scroll', h('table.runs#sweeps-table',
      h('thead', h('tr', h('th', 'Sweep'), h('th', 'Status'), h('th', 'Algorithm'), h('th', 'Searched'),
        h('th', 'Trials'), h('th', 'Pruned'), h('th', 'Best'), h('th.opt', 'Created'))), tbody))));
    view.appendChild(h('section.card', h('h2', 'New sweep'),
      h('p.hint', 'A hyperparameter search: each trial is an ordinary run. The example is the exercise\'s ' +
        'search for 0.95: 12 dnn trials over the learning rate (log scale) and the hidden units, ' +
        'two at a time, with the median stopping rule.'), form));
    function load() {
      api.get('/sweeps?limit=100').then(function (d) {
        msg.textContent = '';
        tbody.textContent = '';
        d.sweeps.forEach(function (w) {
          var p = w.params;
          tbody.appendChild(h('tr', { 'data-sweep': w.id },
            h('td', h('a', { href: '#/sweeps/' + w.id }, w.id)), h('td', badge(w.status)), h('td', p.algorithm),
            h('td', Object.keys(p.space).join(', ')), h('td', w.trials_created + ' / ' + p.trials),
            h('td', String(w.counts.pruned)),
            h('td', w.best ? (p.objective === 'validation_accuracy' ? pct(w.best.objective) : fmt(w.best.objective)) : '—'),
            h('td.opt', w.created_at || '')));
        });
        if (!d.sweeps.length) tbody.appendChild(h('tr', h('td', { colspan: 8 }, 'No sweeps yet: start one below.')));
      }, function (x) { msg.textContent = ''; msg.appendChild(errorBox(x)); });
    }
    load();
    every(3000, load);
  }

  /* A scatter plot of the objective against one searched field in el:
   * points (x, y) sorted by x; log: a log x axis; labels: category names
   * for a list of non-numeric values (x is then their index). */
  function scatterChart(el, field, yLabel, pts, log, labels) {
    /* uPlot draws one point per x and series: the k-th point at each x
     * goes to series k, all drawn alike */
    var byX = {};
    pts.forEach(function (p) { (byX[p[0]] = byX[p[0]] || []).push(p[1]); });
    var xs = Object.keys(byX).map(Number).sort(function (a, b) { return a - b; });
    var depth = 0;
    xs.forEach(function (x) { depth = Math.max(depth, byX[x].length); });
    var cols = [];
    for (var k = 0; k < Math.max(depth, 1); k++)
      cols.push(xs.map(function (x) { return k < byX[x].length ? byX[x][k] : null; }));
    var width = function () { return Math.max(240, el.clientWidth || 320); };
    var u = new uPlot({
      title: yLabel + ' by ' + field,
      width: width(), height: 220,
      scales: { x: log ? { time: false, distr: 3 } : { time: false }, y: {} },
      axes: [{ label: field + (log ? ' (log)' : ''),
               values: labels ? function (u, ticks) { return ticks.map(function (t) { return labels[t] || ''; }); } : undefined,
               splits: labels ? function () { return labels.map(function (_, i) { return i; }); } : undefined },
             { label: yLabel, size: 60 }],
      legend: { show: false },
      series: [{ label: field }].concat(cols.map(function () {
        return { label: yLabel, stroke: COLORS[0], paths: function () { return null; },
                 points: { show: true, size: 8, fill: COLORS[0] } };
      }))
    }, [xs].concat(cols), el);
    var ro = new ResizeObserver(function () { u.setSize({ width: width(), height: 220 }); });
    ro.observe(el);
    el.dataset.points = String(pts.length);
    onLeave(function () { ro.disconnect(); u.destroy(); });
  }

  /* #/sweeps/<id>: a sweep's trials, scatter plots and curves */
  function viewSweep(id) {
    var msg = h('div');
    var title = h('h1#sweep-title', 'Sweep ' + id);
    var summary = h('p#sweep-summary');
    var head = h('div.toolbar', title);
    var tbody = h('tbody');
    var scatters = h('div.pics#sweep-scatter');
    var curves = h('div.chart#sweep-curves');
    var sort = { key: 'objective', dir: -1 };
    var last = null, periodsCache = {}, drawnKey = '';
    var ths = [['trial', 'Trial'], ['status', 'Status'], ['params', 'Params'], ['objective', 'Objective'],
               ['periods_done', 'Periods'], ['run', 'Run']].map(function (c) {
      return h('th', h('button.sort', { type: 'button', 'data-sort': c[0], onclick: function () {
        sort = { key: c[0], dir: sort.key === c[0] ? -sort.dir : (c[0] === 'objective' ? -1 : 1) };
        if (last) renderTable(last);
      } }, c[1]));
    });
    view.appendChild(h('section.card', head, summary, msg,
      h('div.scroll', h('table.runs#trials-table', h('thead', h('tr', ths)), tbody))));
    view.appendChild(h('section.card', h('h2', 'Objective by hyperparameter'), scatters));
    view.appendChild(h('section.card', h('h2', 'Validation curves'),
      h('p.hint', 'Every trial\'s objective by period; pruned trials are dimmed, the best trial is thick.'), curves));
    function showErr(e) { msg.textContent = ''; msg.appendChild(errorBox(e)); }
    function maximize(w) { return w.params.objective === 'validation_accuracy'; }
    function show(w, v) { return v === null || v === undefined ? '—' : maximize(w) ? pct(v) : fmt(v); }
    function renderTable(w) {
      var rows = w.trials.slice();
      var mx = maximize(w);
      rows.sort(function (a, b) {
        var k = sort.key, x = a[k], y = b[k];
        if (k === 'objective') {
          // trials without an objective last, whichever the direction
          if (x === null) return 1;
          if (y === null) return -1;
          if (!mx) { x = -x; y = -y; }
        } else if (k === 'run') { x = Number(x); y = Number(y); }
        else if (k === 'params') { x = JSON.stringify(x); y = JSON.stringify(y); }
        return (x < y ? -1 : x > y ? 1 : 0) * sort.dir;
      });
      tbody.textContent = '';
      rows.forEach(function (t) {
        var best = w.best && w.best.run === t.run;
        tbody.appendChild(h('tr' + (best ? '.best' : '') + (t.status === 'pruned' ? '.dim' : ''),
          { 'data-trial': String(t.trial), title: t.error || '' },
          h('td', String(t.trial)), h('td', badge(t.status)),
          h('td.params', Object.keys(t.params).map(function (k) { return k + ' ' + sweepValue(t.params[k]); }).join(' · ')),
          h('td.objective', show(w, t.objective)), h('td', String(t.periods_done)),
          h('td', h('a', { href: '#/runs/' + t.run }, t.run))));
      });
    }
    function renderHead(w) {
      title.textContent = 'Sweep ' + w.id + ' ';
      title.appendChild(badge(w.status));
      var c = w.counts;
      summary.textContent = w.params.algorithm + ' search of ' + Object.keys(w.params.space).join(', ') + ': ' +
        w.trials_created + ' of ' + w.params.trials + ' trials created, ' + c.succeeded + ' succeeded, ' +
        c.pruned + ' pruned, ' + (c.running + c.queued) + ' training or queued' +
        (w.params.early_stopping ? '; early stopping: ' + w.params.early_stopping.rule : '') +
        '. Best: ' + (w.best ? show(w, w.best.objective) + ' (run ' + w.best.run + ')' : '—') +
        (w.error ? '. ' + w.error : '');
      head.querySelectorAll('button').forEach(function (b) { b.remove(); });
      if (active(w.status))
        head.appendChild(h('button.danger#cancel-sweep', { type: 'button', onclick: function () {
          api.post('/sweeps/' + id + '/cancel').then(refresh, showErr);
        } }, 'Cancel'));
      else
        head.appendChild(h('button.danger', { type: 'button', onclick: function () {
          if (!confirm('Delete sweep ' + id + ' and its trials?')) return;
          api.del('/sweeps/' + id).then(function () { location.hash = '#/sweeps'; }, showErr);
        } }, 'Delete'));
    }
    function renderScatter(w) {
      var key = w.trials.map(function (t) { return t.run + ':' + t.objective; }).join(',');
      if (key === drawnKey) return;
      drawnKey = key;
      scatters.textContent = '';
      var yLabel = w.params.objective.replace(/_/g, ' ');
      Object.keys(w.params.space).forEach(function (field) {
        var dim = w.params.space[field];
        var labels = null;
        if (dim.values && dim.values.some(function (v) { return typeof v !== 'number'; }))
          labels = dim.values.map(sweepValue);
        var pts = w.trials.filter(function (t) { return t.objective !== null; }).map(function (t) {
          var v = t.params[field];
          return [labels ? labels.indexOf(sweepValue(v)) : v, t.objective];
        });
        var el = h('div.chart.scatter', { 'data-field': field });
        scatters.appendChild(h('figure', el));
        scatterChart(el, field, yLabel, pts, dim.scale === 'log', labels);
      });
    }
    function renderCurves(w) {
      var done = w.trials.filter(function (t) { return t.periods_done > 0; });
      Promise.all(done.map(function (t) {
        var c = periodsCache[t.run];
        if (c && c.n === t.periods_done && !active(t.status)) return Promise.resolve(c.ps);
        return api.get('/runs/' + t.run + '/periods?limit=1000').then(function (d) {
          periodsCache[t.run] = { n: t.periods_done, ps: d.periods };
          return d.periods;
        });
      })).then(function (all) {
        var n = 0;
        all.forEach(function (ps) { n = Math.max(n, ps.length); });
        var xs = [];
        for (var i = 1; i <= n; i++) xs.push(i);
        var obj = w.params.objective;
        var series = done.map(function (t, i) {
          var best = w.best && w.best.run === t.run;
          var color = best ? '#16a34a' : t.status === 'pruned' ? 'rgba(107,114,128,.35)' : COLORS[i % COLORS.length];
          return { label: 'trial ' + t.trial, stroke: color, width: best ? 4 : 1.5 };
        });
        var data = [xs].concat(all.map(function (ps) {
          var ys = xs.map(function () { return null; });
          ps.forEach(function (p) { ys[p.period - 1] = p[obj]; });
          return ys;
        }));
        curves.textContent = '';
        var width = function () { return Math.max(240, curves.clientWidth || 320); };
        var u = new uPlot({
          width: width(), height: 300,
          scales: { x: { time: false } },
          axes: [{ label: 'period', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500] },
                 { label: obj.replace(/_/g, ' '), size: 60 }],
          legend: { show: series.length <= 24 },
          series: [{ label: 'period' }].concat(series.map(function (s) {
            return { label: s.label, stroke: s.stroke, width: s.width, spanGaps: true, points: { show: false } };
          }))
        }, data, curves);
        curves.dataset.series = String(series.length);
        onLeave(function () { u.destroy(); });
      }, showErr);
    }
    function refresh() {
      return api.get('/sweeps/' + id).then(function (w) {
        last = w;
        msg.textContent = '';
        renderHead(w);
        renderTable(w);
        renderScatter(w);
        renderCurves(w);
        view.dataset.sweepStatus = w.status;
      }, showErr);
    }
    refresh();
    every(2000, function () { if (!last || active(last.status)) refresh(); });
  }

  window.mnistd = { api: api, route: route };
  loadMe().then(route);
})();
