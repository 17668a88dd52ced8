// The dashboard page: a header with the four views (runs, mask inspector, playground, responses), switched by the
// URL hash. Each view talks to the JSON API of src/ui/api.ts.
import uplotCss from 'uplot/dist/uPlot.min.css';
import { h } from './dom.ts';
import { InspectorView } from './inspector-view.ts';
import { PlaygroundView } from './playground-view.ts';
import { ResponsesView } from './responses-view.ts';
import { RunsView } from './runs-view.ts';
import { STYLES } from './styles.ts';

interface View {
  el: HTMLElement;
  show(): void;
  hide(): void;
}

function start(): void {
  document.head.append(h('style', {}, uplotCss, STYLES));
  const views: Record<string, { title: string; view: View }> = {
    runs: { title: 'Runs', view: new RunsView() },
    inspect: { title: 'Mask inspector', view: new InspectorView() },
    playground: { title: 'Playground', view: new PlaygroundView() },
    responses: { title: 'Responses', view: new ResponsesView() },
  };
  const links = Object.entries(views).map(([key, v]) => h('a', { href: `#${key}`, 'data-view': key }, v.title));
  const main = h('main', {}, ...Object.values(views).map((v) => v.view.el));
  document.body.append(h('header', { class: 'top' }, h('h1', {}, 'sftkit'), h('nav', { class: 'tabs' }, ...links)), main);
  let current: string | undefined;
  const route = () => {
    const key = location.hash.slice(1) in views ? location.hash.slice(1) : 'runs';
    if (key === current) return;
    if (current) views[current]!.view.hide();
    current = key;
    for (const [k, v] of Object.entries(views)) v.view.el.hidden = k !== key;
    for (const a of links) a.classList.toggle('active', a.dataset.view === key);
    views[key]!.view.show();
  };
  window.addEventListener('hashchange', route);
  route();
}

start();
