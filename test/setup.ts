import '../local/polyfill';
