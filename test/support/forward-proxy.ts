// A real forward proxy on loopback (proxy-chain, "think Squid"), recording every request it is
// asked for: CONNECT tunnels (the target, and whether credentials came) and plain requests.
import { Server } from 'proxy-chain'

export interface ProxyCall {
  hostname: string
  port: number
  /** false: a CONNECT tunnel. */
  isHttp: boolean
  username: string
  /** Whether the request carried Proxy-Authorization. */
  authorization: boolean
}

export interface TestProxy {
  url: string
  port: number
  calls: ProxyCall[]
  close: () => Promise<void>
}

export async function startForwardProxy (opts: { user?: string, password?: string } = {}): Promise<TestProxy> {
  const calls: ProxyCall[] = []
  const server = new Server({
    port: 0,
    host: '127.0.0.1',
    verbose: false,
    prepareRequestFunction: ({ request, username, password, hostname, port, isHttp }) => {
      calls.push({ hostname, port, isHttp, username, authorization: request.headers['proxy-authorization'] !== undefined })
      const denied = opts.user !== undefined && (username !== opts.user || password !== opts.password)
      return { requestAuthentication: denied }
    },
  })
  await server.listen()
  return {
    url: `http://127.0.0.1:${server.port}`,
    port: server.port,
    calls,
    close: async () => { await server.close(true) },
  }
}
