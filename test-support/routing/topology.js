'use strict'
// The network of the routing load proofs (__test__/routing-load.test.js,
// benchmark/suites/routing.js): containers on one bridge, as a balena app's
// services are. Everything lives in private namespaces made by
// test-support/netns.js, so no packet of a run leaves this machine.
//
//   'br'       holds bridge br0 (no address: a switch)
//   'proxy'    eth0 10.77.0.1/24: the proxy, the router, the load client
//   'slot0'…   eth0 10.77.0.2/24, 10.77.0.3/24 …: one namespace per address an
//              instance may get; versions take them round robin (v1 → slot0,
//              v2 → slot1, v3 → slot0 …), as Docker hands a freed address to
//              the next container on a small network
//
// Every namespace has lo up and the multicast range routed out of eth0,
// where a container's default route would send it: the handover, status and
// router groups reach every namespace on the bridge and nothing else.

const { build } = require('../netns.js')

const SUBNET = '10.77.0.0/24'
const PROXY_ADDRESS = '10.77.0.1'
/** Instance addresses: slot i is 10.77.0.(2 + i). */
const slotAddress = (slot) => `10.77.0.${2 + slot}`

/**
 * The bridge, the proxy namespace and `slots` instance namespaces. Returns
 * { topology, proxy: { role, address }, slots: [{ role, address }] };
 * `topology.destroy()` removes all of it.
 */
function routingNetwork(tag, slots = 2) {
  const instances = Array.from({ length: slots }, (_, i) => ({ role: `slot${i}`, address: slotAddress(i) }))
  const topology = build(tag, (t) => {
    t.addNamespace('br')
    t.addBridge('br', 'br0')
    for (const { role, address } of [{ role: 'proxy', address: PROXY_ADDRESS }, ...instances]) {
      t.addNamespace(role)
      t.plug(role, 'eth0', { bridgeRole: 'br', bridge: 'br0', cidr: `${address}/24` })
      t.routeMulticast(role, 'eth0')
    }
  })
  return { topology, proxy: { role: 'proxy', address: PROXY_ADDRESS }, slots: instances }
}

module.exports = { routingNetwork, SUBNET, PROXY_ADDRESS, slotAddress }
