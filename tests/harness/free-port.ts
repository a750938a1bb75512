/**
 * Free ports for test servers. The implementation is shared with the local-run
 * supervisor: both need ports below the ephemeral range (see services/local/free-port).
 */
export { findFreePort, isPortFree } from '../../services/local/free-port';
