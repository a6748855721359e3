/** simple-peer's browser build has the package's API (its types come from @types/simple-peer). */
declare module 'simple-peer/simplepeer.min.js' {
  import SimplePeer from 'simple-peer';
  export default SimplePeer;
}
