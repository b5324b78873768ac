// SPDX-License-Identifier: Apache-2.0
// Nothing silent (issue 18 item 4), the Swift side: an unusable trace path is reported in the
// subsystem's log (and on standard error); a model with no VFIO group says why. The C side
// (standard error, swiftvfio_log(), swiftvfio_state()) is Tests/CABI/test_diagnostics.c.
import Testing
@testable import VFIO

@Suite struct NothingSilentTests {
    @Test func unusableTracePathIsReported() {
        let sub = VFIOSubsystem(diagnostics: VFIODiagnostics(trace: "/nonexistent-swiftvfio-dir/t.txt"))
        #expect(!sub.tracer.isEnabled)
        #expect(sub.tracer.outputError == .ENOENT)
        #expect(sub.log.messages.contains(KernelMessage(
            level: .warning,
            text: "SWIFTVFIO_TRACE=/nonexistent-swiftvfio-dir/t.txt: cannot open for appending (ENOENT): the trace is off")))
        teardown(sub)
    }

    @Test func usableTracePathIsSilent() {
        let sub = VFIOSubsystem(diagnostics: VFIODiagnostics(trace: "-"))
        #expect(sub.tracer.isEnabled)
        #expect(sub.tracer.outputError == nil)
        #expect(sub.log.messages.isEmpty)
        sub.tracer.disable()
        teardown(sub)
    }

    @Test func noVFIOGroupsSaysWhy() throws {
        let empty = makeSubsystem()
        #expect(empty.whyNoVFIOGroups?.hasPrefix("no IOMMU groups (0 device(s)") == true)
        teardown(empty)

        let kernelOnly = makeSubsystem()
        try kernelOnly.probePCIDevice(name: "0000:01:00.0", iommuGroupID: 3, driver: "e1000e")
        #expect(kernelOnly.whyNoVFIOGroups == "1 IOMMU group(s) but no device bound to vfio-pci (drivers bound: e1000e)")
        try kernelOnly.probePCIDevice(name: "0000:01:00.1", iommuGroupID: 4, driver: "vfio-pci")
        #expect(kernelOnly.whyNoVFIOGroups == nil)
        teardown(kernelOnly)
    }
}
