// node --import ./loadtest/k6/test/register.mjs …: k6 modules become stubs.
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
