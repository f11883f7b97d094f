import APTLayerTLS
import Foundation
import NIOSSL
import TestSupport
import Testing

/// The one client-TLS builder: which files it loads, what it presents, and which file a failure names.
@Suite("client TLS files", .tags(.fast))
struct ClientTLSFilesTests {
    @Test func loadsWhatItNamesAndNamesWhatFails() throws {
        let pki = RouterBed.pki
        let files = ClientTLSFiles(ca: "\(pki)/ca.crt", certificate: "\(pki)/reader.crt", key: "\(pki)/reader.key")
        let full = try files.configuration()
        #expect(full.certificateChain.count == 1)
        #expect(full.privateKey != nil)
        #expect(full.minimumTLSVersion == .tlsv12)
        let anonymous = try files.configuration(identity: false)
        #expect(anonymous.certificateChain.isEmpty && anonymous.privateKey == nil)
        #expect(try ClientTLSFiles().configuration().trustRoots == .default)
        #expect(full.trustRoots == .file("\(pki)/ca.crt"))

        let cases: [(ClientTLSFiles, ClientTLSFiles.Failure.File)] = [
            (ClientTLSFiles(ca: "\(pki)/reader.key"), .ca),
            (ClientTLSFiles(ca: "/no/such/ca.crt"), .ca),
            (ClientTLSFiles(certificate: "/no/such.crt", key: "\(pki)/reader.key"), .certificate),
            (ClientTLSFiles(certificate: "\(pki)/reader.crt", key: "\(pki)/reader.crt"), .key),
        ]
        for (bad, file) in cases {
            #expect {
                _ = try bad.configuration()
            } throws: { error in
                (error as? ClientTLSFiles.Failure)?.file == file
            }
        }
    }

    @Test func aSectionsOwnFilesWin() {
        let shared = ClientTLSFiles(ca: "/fleet/ca", certificate: "/fleet/c", key: "/fleet/k")
        #expect(shared.overlaid(by: ClientTLSFiles(ca: "/t/ca")) == ClientTLSFiles(ca: "/t/ca", certificate: "/fleet/c", key: "/fleet/k"))
        #expect(shared.overlaid(by: ClientTLSFiles()) == shared)
    }
}
