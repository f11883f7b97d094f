import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import AsyncHTTPClient
import Foundation
import Glibc
import Logging
import NIOCore

/// Sends the anonymous weekly count: `GET ENDPOINT?countme=N` with the os-release User-Agent, no
/// client certificate, no cookie, no identifier; the cookie file is written (atomically) only after
/// an endpoint answered 2xx or 3xx. Tries after `countme-delay`, then every 3 days plus up to one
/// day at random (rpm-ostree's timer); tries in an already counted window do nothing.
actor CountmeReporter {
    let journal: Journal
    let reporter: StatusReporter
    let client: HTTPClient
    let cookiePath: String
    let engineOptions: Engine.Options
    let delay: Int
    let logger: Logger

    init(
        journal: Journal, reporter: StatusReporter, client: HTTPClient, cookiePath: String, engineOptions: Engine.Options, delay: Int,
        logger: Logger
    ) {
        self.journal = journal
        self.reporter = reporter
        self.client = client
        self.cookiePath = cookiePath
        self.engineOptions = engineOptions
        self.delay = delay
        self.logger = logger
    }

    func run() async {
        try? await Task.sleep(for: .seconds(delay))
        while !Task.isCancelled {
            await attempt()
            try? await Task.sleep(for: .seconds(3 * 86400 + Int.random(in: 0...86400)))
        }
    }

    /// One attempt at `now`; returns the bucket sent, or nil when nothing was sent.
    @discardableResult
    func attempt(now: Date = Date()) async -> Int? {
        let endpoints = reporter.settings(try? await journal.off { try $0.acceptedPolicy() }).countmeEndpoints
        guard !endpoints.isEmpty else { return nil }
        let t = Int64(now.timeIntervalSince1970)
        let previous = CountmeCookie.load(cookiePath)
        guard let bucket = Countme.due(previous, now: t) else { return nil }
        let agent = userAgent()
        var counted = false
        for endpoint in endpoints {
            let url = endpoint + (endpoint.contains("?") ? "&" : "?") + "countme=\(bucket)"
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "user-agent", value: agent)
            do {
                let response = try await client.execute(request, timeout: .seconds(60))
                _ = try? await response.body.collect(upTo: 1 << 20)
                let status = Int(response.status.code)
                if (200..<400).contains(status) { counted = true }
                logger.info("countme sent", metadata: ["endpoint": "\(endpoint)", "bucket": "\(bucket)", "status": "\(status)"])
            } catch {
                logger.info("countme not sent", metadata: ["endpoint": "\(endpoint)", "error": "\(error)"])
            }
        }
        guard counted else { return nil }
        do { try CountmeCookie.counted(previous, now: t).save(cookiePath) } catch {
            logger.warning("countme cookie not written", metadata: ["path": "\(cookiePath)", "error": "\(error)"])
        }
        return bucket
    }

    /// The User-Agent from the booted deployment's os-release (the default one's on a sysroot
    /// nothing booted).
    func userAgent() -> String {
        var name = utsname()
        uname(&name)
        let arch = withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        return (deploymentRoot().flatMap(OSRelease.load(root:)) ?? OSRelease(text: "")).userAgent(arch: arch)
    }

    func deploymentRoot() -> String? {
        guard engineOptions.sysroot != "/" else { return "/" }
        guard let status = try? Engine(options: engineOptions).status() else { return nil }
        guard let d = status.deployments.first(where: \.booted) ?? status.deployments.first else { return nil }
        return "\(engineOptions.sysroot)/ostree/deploy/\(d.osname)/deploy/\(d.checksum).\(d.serial)"
    }
}
