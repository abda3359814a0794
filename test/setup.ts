import '../local/polyfill';
import '../local/library-shims';
import fc from 'fast-check';

// Property tests are reproducible: every fc.assert draws from this seed unless it names its own. An input one of
// them finds is kept as a named case beside it.
fc.configureGlobal({ seed: 20_261_129 });
