// The dashboard's traffic plots: each <section class="traffic" data-src=URL> has
// <figure class="plot" data-series=KEY data-title=TITLE> children; the JSON at URL
// ({t: [unix s], requests: [], bytes: [], errors: []}) is drawn into each with uPlot,
// and fetched again every period. A static file: the CSP allows no inline script.
(function () {
  'use strict';

  const COLOURS = { requests: '#2456a6', bytes: '#1f7a3d', errors: '#b3261e' };
  const UNITS = { requests: '/s', bytes: ' B/s', errors: '/s' };
  // What the plots span, in seconds; the data says (its "window").
  let windowSeconds = 3600;
  // Unix seconds of the newest sample drawn.
  let lastSample = 0;

  function short(n) {
    if (n == null) return '-';
    const abs = Math.abs(n);
    if (abs >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
    if (abs >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
    if (abs >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
    if (abs >= 10 || n === 0) return n.toFixed(0);
    return n.toFixed(2);
  }

  function options(fig, key) {
    const unit = UNITS[key] || '';
    return {
      title: fig.dataset.title,
      width: Math.max(fig.clientWidth - 12, 320),
      height: 200,
      scales: {
        // Always the whole window, ending at the last sample (or now).
        x: {
          time: true,
          // From the data itself: uPlot widens a one-sample range before it asks.
          range: () => {
            const end = lastSample || Date.now() / 1000;
            return [end - windowSeconds, end];
          },
        },
        y: { range: (u, min, max) => [0, Math.max(Number.isFinite(max) ? max : 0, 1)] },
      },
      series: [
        {},
        {
          label: fig.dataset.title,
          stroke: COLOURS[key] || '#555',
          fill: `${COLOURS[key] || '#555555'}22`,
          width: 2,
          value: (u, v) => (v == null ? '-' : `${short(v)}${unit}`),
        },
      ],
      axes: [{}, { values: (u, ticks) => ticks.map((v) => short(v)), size: 60 }],
      legend: { show: true },
    };
  }

  function start(section) {
    const figures = Array.from(section.querySelectorAll('figure.plot[data-series]'));
    const plots = new Map();
    let period = 10;

    async function refresh() {
      let data;
      try {
        const r = await fetch(section.dataset.src, {
          credentials: 'same-origin',
          headers: { accept: 'application/json' },
        });
        if (r.status === 401) {
          window.location.assign('/ui/sign-in?why=expired');
          return;
        }
        if (!r.ok) throw new Error(`the traffic data answered HTTP ${r.status}`);
        data = await r.json();
      } catch (e) {
        section.dataset.error = String(e);
        return;
      }
      delete section.dataset.error;
      period = data.period || period;
      windowSeconds = data.window || windowSeconds;
      lastSample = data.t.length ? data.t[data.t.length - 1] : 0;
      for (const fig of figures) {
        const key = fig.dataset.series;
        const series = [data.t, data[key] || []];
        const plot = plots.get(key);
        if (plot) {
          plot.setData(series);
        } else {
          plots.set(key, new uPlot(options(fig, key), series, fig));
        }
      }
      section.dataset.drawn = String(data.t.length);
    }

    window.addEventListener('resize', () => {
      for (const [key, plot] of plots) {
        const fig = figures.find((f) => f.dataset.series === key);
        plot.setSize({ width: Math.max(fig.clientWidth - 12, 320), height: 200 });
      }
    });
    refresh().finally(function again() {
      setTimeout(() => refresh().finally(again), period * 1000);
    });
  }

  document.querySelectorAll('section.traffic[data-src]').forEach(start);
})();
