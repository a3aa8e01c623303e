// The shim's `k6/metrics`: Counter, Gauge, Rate, Trend record every value added.
import { metric } from './state.mjs';

class Metric {
  constructor(name, type, isTime) {
    this.name = name;
    this._m = metric(name, type, !!isTime);
  }
  add(value, tags) {
    if (typeof value === 'boolean') value = value ? 1 : 0;
    if (typeof value !== 'number' || Number.isNaN(value)) throw new Error(`${this.name}.add: not a number: ${value}`);
    this._m.values.push(value);
    return true;
  }
}
export class Counter extends Metric { constructor(name, isTime) { super(name, 'counter', isTime); } }
export class Gauge extends Metric { constructor(name, isTime) { super(name, 'gauge', isTime); } }
export class Rate extends Metric { constructor(name, isTime) { super(name, 'rate', isTime); } }
export class Trend extends Metric { constructor(name, isTime) { super(name, 'trend', isTime); } }
export default { Counter, Gauge, Rate, Trend };
