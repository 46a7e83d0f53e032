#!/usr/bin/env node
// Test driver: several y-websocket clients in one long-lived Node process, driven over
// stdin/stdout with one JSON object per line. Every command gets exactly one reply line with
// the same "id"; a failure replies {"id", "error"}. See README.md for the commands.
//
// Each client is its own Y.Doc + WebsocketProvider (the stock npm client, `ws` as the socket,
// BroadcastChannel off so that clients in this process only meet through the server).

import * as readline from 'node:readline'
import { isDeepStrictEqual } from 'node:util'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

// stdout carries the protocol only: route stray library logging to stderr.
console.log = (...args) => console.error(...args)
console.info = (...args) => console.error(...args)

const ROOT_MAPS = ['meta', 'canvases', 'story', 'assets', 'takes']
const ROOT_ARRAYS = ['chat']
const DEFAULT_TIMEOUT_MS = 5000

/** @type {Map<string, any>} client name -> record */
const clients = new Map()

class CommandError extends Error {}

const reply = (obj) => {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

const need = (args, key) => {
  if (args[key] === undefined) throw new CommandError(`missing "${key}"`)
  return args[key]
}

const getClient = (args) => {
  const name = need(args, 'client')
  const rec = clients.get(name)
  if (rec === undefined) throw new CommandError(`no client "${name}"`)
  return rec
}

const rootType = (doc, name) => {
  if (typeof name !== 'string' || name === '') throw new CommandError('path[0] must be a root name')
  return ROOT_ARRAYS.includes(name) ? doc.getArray(name) : doc.getMap(name)
}

const arrayIndex = (arr, seg) => {
  const i = typeof seg === 'number' ? seg : Number.parseInt(seg, 10)
  if (!Number.isInteger(i)) throw new CommandError(`array index expected, got ${JSON.stringify(seg)}`)
  const idx = i < 0 ? arr.length + i : i
  if (idx < 0 || idx >= arr.length) throw new CommandError(`index ${seg} out of range (length ${arr.length})`)
  return idx
}

const checkPath = (path, minLength) => {
  if (!Array.isArray(path) || path.length < minLength) {
    throw new CommandError(`"path" must be an array of at least ${minLength} segment(s)`)
  }
}

/** The container that holds the last path segment; with create, missing maps are made on the way. */
const parentOf = (doc, path, create) => {
  let cur = rootType(doc, path[0])
  for (const seg of path.slice(1, -1)) {
    let next
    if (cur instanceof Y.Array) {
      next = cur.get(arrayIndex(cur, seg))
    } else if (cur instanceof Y.Map) {
      next = cur.get(String(seg))
      if (next === undefined && create) {
        next = new Y.Map()
        cur.set(String(seg), next)
      }
    } else {
      throw new CommandError(`cannot descend into ${JSON.stringify(seg)}: not a Y.Map or Y.Array`)
    }
    if (next === undefined) return undefined
    cur = next
  }
  return cur
}

const toJSON = (v) => (v instanceof Y.AbstractType ? v.toJSON() : v)

/** JSON value at path, or undefined when something on the way is missing. */
const valueAt = (doc, path) => {
  checkPath(path, 1)
  if (path.length === 1) return toJSON(rootType(doc, path[0]))
  const parent = parentOf(doc, path, false)
  const last = path[path.length - 1]
  if (parent instanceof Y.Map) return toJSON(parent.get(String(last)))
  if (parent instanceof Y.Array) {
    const i = typeof last === 'number' ? last : Number.parseInt(last, 10)
    return i >= 0 && i < parent.length ? toJSON(parent.get(i)) : undefined
  }
  return undefined
}

/** A plain JSON value into Yjs content: with deep, objects become Y.Map and arrays Y.Array. */
const toYjs = (value, deep) => {
  if (!deep || value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) {
    const arr = new Y.Array()
    arr.push(value.map((v) => toYjs(v, true)))
    return arr
  }
  const map = new Y.Map()
  for (const [k, v] of Object.entries(value)) map.set(k, toYjs(v, true))
  return map
}

const textAt = (doc, path) => {
  checkPath(path, 2)
  const parent = parentOf(doc, path, true)
  const last = path[path.length - 1]
  let text
  if (parent instanceof Y.Map) {
    text = parent.get(String(last))
    if (text === undefined) {
      text = new Y.Text()
      parent.set(String(last), text)
    }
  } else if (parent instanceof Y.Array) {
    text = parent.get(arrayIndex(parent, last))
  } else {
    throw new CommandError('no container at path')
  }
  if (!(text instanceof Y.Text)) throw new CommandError('value at path is not a Y.Text')
  return text
}

const docState = (doc) => {
  const state = {}
  for (const name of ROOT_MAPS) state[name] = doc.getMap(name).toJSON()
  for (const name of ROOT_ARRAYS) state[name] = doc.getArray(name).toJSON()
  // any other root type that this doc already knows the kind of
  for (const [name, type] of doc.share) {
    if (name in state) continue
    if (type instanceof Y.Map || type instanceof Y.Array || type instanceof Y.Text) state[name] = type.toJSON()
  }
  return state
}

/** Resolves with a predicate's value once it is not undefined; checks now and on every trigger. */
const waitUntil = (subscribe, check, timeoutMs, what) =>
  new Promise((resolve, reject) => {
    let done = false
    let unsubscribe = () => {}
    const finish = (fn, arg) => {
      if (done) return
      done = true
      clearTimeout(timer)
      unsubscribe()
      fn(arg)
    }
    const timer = setTimeout(() => finish(reject, new CommandError(`timeout after ${timeoutMs} ms: ${what()}`)), timeoutMs)
    const run = () => {
      try {
        const r = check()
        if (r !== undefined) finish(resolve, r)
      } catch (e) {
        finish(reject, e)
      }
    }
    unsubscribe = subscribe(run)
    run()
  })

/**
 * Wait until the provider has synced, or its socket closed, or time ran out. A close (or a
 * timeout) stops the provider's reconnect loop unless keepTrying.
 */
const waitConnected = async (rec, timeoutMs, keepTrying) => {
  const startCloses = rec.closes.length
  try {
    return await waitUntil(
      (run) => {
        rec.provider.on('sync', run)
        rec.provider.on('connection-close', run)
        return () => {
          rec.provider.off('sync', run)
          rec.provider.off('connection-close', run)
        }
      },
      () => {
        if (rec.provider.synced) return { synced: true, client_id: rec.doc.clientID }
        if (rec.closes.length > startCloses) {
          const c = rec.closes[rec.closes.length - 1]
          // deferred: we are inside the provider's own close handling here
          if (!keepTrying) setImmediate(() => rec.provider.disconnect())
          return { closed: c.code, reason: c.reason, ws_error: c.ws_error }
        }
        return undefined
      },
      timeoutMs,
      () => `client "${rec.name}" not synced (status ${rec.status})`
    )
  } catch (e) {
    if (!keepTrying) rec.provider.disconnect()
    throw e
  }
}

const commands = {
  async open (args) {
    const name = need(args, 'client')
    const old = clients.get(name)
    if (old !== undefined) {
      old.provider.destroy()
      old.doc.destroy()
      clients.delete(name)
    }
    const doc = new Y.Doc()
    const rec = {
      name,
      doc,
      provider: null,
      status: 'new',
      remoteUpdates: 0,
      localUpdates: 0,
      closes: [],
      lastError: null
    }
    const opts = {
      params: args.params ?? {},
      WebSocketPolyfill: WebSocket,
      disableBc: true,
      connect: false
    }
    if (args.max_backoff_ms !== undefined) opts.maxBackoffTime = args.max_backoff_ms
    const provider = new WebsocketProvider(need(args, 'url'), need(args, 'room'), doc, opts)
    rec.provider = provider
    doc.on('update', (_update, origin) => {
      if (origin === provider) rec.remoteUpdates++
      else rec.localUpdates++
    })
    provider.on('status', ({ status }) => { rec.status = status })
    provider.on('connection-error', (event) => {
      rec.lastError = event?.message ?? event?.error?.message ?? String(event?.type ?? 'error')
    })
    // event is null when we closed the socket ourselves (disconnect/destroy)
    provider.on('connection-close', (event) => {
      if (event == null) return
      rec.closes.push({ code: event.code, reason: String(event.reason ?? ''), ws_error: rec.lastError })
      rec.lastError = null
    })
    clients.set(name, rec)
    provider.connect()
    return waitConnected(rec, args.timeout_ms ?? DEFAULT_TIMEOUT_MS, args.keep_trying === true)
  },

  async connect (args) {
    const rec = getClient(args)
    rec.provider.connect()
    if (args.wait === false) return {}
    return waitConnected(rec, args.timeout_ms ?? DEFAULT_TIMEOUT_MS, args.keep_trying === true)
  },

  async disconnect (args) {
    getClient(args).provider.disconnect()
    return {}
  },

  async status (args) {
    const rec = getClient(args)
    return {
      status: rec.status,
      connected: rec.provider.wsconnected,
      synced: rec.provider.synced,
      should_connect: rec.provider.shouldConnect,
      client_id: rec.doc.clientID,
      closes: rec.closes
    }
  },

  async set (args) {
    const rec = getClient(args)
    const path = need(args, 'path')
    checkPath(path, 2)
    if (!('value' in args)) throw new CommandError('missing "value"')
    const parent = parentOf(rec.doc, path, true)
    if (!(parent instanceof Y.Map)) throw new CommandError('set needs a Y.Map as parent')
    const value = args.text === true ? new Y.Text(String(args.value)) : toYjs(args.value, args.deep === true)
    parent.set(String(path[path.length - 1]), value)
    return {}
  },

  async delete (args) {
    const rec = getClient(args)
    const path = need(args, 'path')
    checkPath(path, 2)
    const parent = parentOf(rec.doc, path, false)
    const last = path[path.length - 1]
    if (parent instanceof Y.Map) {
      const existed = parent.has(String(last))
      parent.delete(String(last))
      return { deleted: existed }
    }
    if (parent instanceof Y.Array) {
      parent.delete(arrayIndex(parent, last), 1)
      return { deleted: true }
    }
    return { deleted: false }
  },

  async get (args) {
    const value = valueAt(getClient(args).doc, need(args, 'path'))
    return value === undefined ? { absent: true } : { value }
  },

  async text_insert (args) {
    const rec = getClient(args)
    textAt(rec.doc, need(args, 'path')).insert(need(args, 'index'), String(need(args, 'text')))
    return {}
  },

  async text_delete (args) {
    const rec = getClient(args)
    textAt(rec.doc, need(args, 'path')).delete(need(args, 'index'), need(args, 'length'))
    return {}
  },

  async chat_push (args) {
    const rec = getClient(args)
    const message = need(args, 'message')
    const item = new Y.Map()
    for (const [k, v] of Object.entries(message)) {
      item.set(k, k === 'text' ? new Y.Text(String(v)) : v)
    }
    const chat = rec.doc.getArray('chat')
    chat.push([item])
    return { index: chat.length - 1 }
  },

  async state (args) {
    return { state: docState(getClient(args).doc) }
  },

  async wait_for (args) {
    const rec = getClient(args)
    const path = need(args, 'path')
    checkPath(path, 1)
    const absent = args.absent === true
    if (!absent && !('value' in args)) throw new CommandError('missing "value" (or "absent": true)')
    return waitUntil(
      (run) => {
        rec.doc.on('update', run)
        return () => rec.doc.off('update', run)
      },
      () => {
        const v = valueAt(rec.doc, path)
        if (absent) return v === undefined ? { absent: true } : undefined
        return isDeepStrictEqual(v, args.value) ? { value: v } : undefined
      },
      args.timeout_ms ?? DEFAULT_TIMEOUT_MS,
      () => {
        const v = valueAt(rec.doc, path)
        return `${JSON.stringify(path)} is ${v === undefined ? 'absent' : JSON.stringify(v)}`
      }
    )
  },

  async awareness_set (args) {
    getClient(args).provider.awareness.setLocalState(args.state ?? null)
    return {}
  },

  async awareness_peers (args) {
    const rec = getClient(args)
    const awareness = rec.provider.awareness
    const min = args.min ?? 0
    const peers = () => {
      const out = { peers: [], ids: [] }
      for (const [id, state] of awareness.getStates()) {
        if (id === rec.doc.clientID) continue
        out.peers.push(state)
        out.ids.push(id)
      }
      return out
    }
    return waitUntil(
      (run) => {
        awareness.on('change', run)
        return () => awareness.off('change', run)
      },
      () => {
        const p = peers()
        return p.peers.length >= min ? p : undefined
      },
      args.timeout_ms ?? DEFAULT_TIMEOUT_MS,
      () => `only ${peers().peers.length} peer(s), wanted ${min}`
    )
  },

  async update_count (args) {
    const rec = getClient(args)
    return { count: rec.remoteUpdates, local: rec.localUpdates }
  },

  async close (args) {
    const rec = getClient(args)
    rec.provider.destroy()
    rec.doc.destroy()
    clients.delete(rec.name)
    return {}
  },

  async list () {
    return { clients: [...clients.keys()] }
  },

  async exit () {
    setImmediate(shutdown)
    return {}
  }
}

const shutdown = () => {
  for (const rec of clients.values()) {
    try {
      rec.provider.destroy()
      rec.doc.destroy()
    } catch {}
  }
  clients.clear()
  process.exit(0)
}

const handle = async (line) => {
  if (line.trim() === '') return
  let msg
  try {
    msg = JSON.parse(line)
  } catch (e) {
    reply({ id: null, error: `bad JSON: ${e.message}` })
    return
  }
  const id = msg.id ?? null
  try {
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) throw new CommandError('expected a JSON object')
    const fn = Object.hasOwn(commands, msg.cmd) ? commands[msg.cmd] : undefined
    if (fn === undefined) throw new CommandError(`unknown cmd ${JSON.stringify(msg.cmd)}`)
    const result = await fn(msg)
    reply({ id, ...result })
  } catch (e) {
    reply({ id, error: e instanceof CommandError ? e.message : String(e?.stack ?? e) })
  }
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
rl.on('line', (line) => { handle(line) })
rl.on('close', shutdown)
