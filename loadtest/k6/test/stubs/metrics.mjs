// Stub of k6/metrics: metrics keep their samples in .samples; the last
// one made under a name is globalThis.__k6metrics[name].
class Metric {
  constructor(name) {
    this.name = name;
    this.samples = [];
    (globalThis.__k6metrics ||= {})[name] = this;
  }
  add(v, tags) { this.samples.push([v, tags]); }
}
export class Counter extends Metric {}
export class Rate extends Metric {}
export class Trend extends Metric {}
export class Gauge extends Metric {}
export default { Counter, Rate, Trend, Gauge };
