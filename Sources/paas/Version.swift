import PaasConfig

/// paas's version, printed by `paas --version`.
enum PaasVersion {
    static let current = "0.1.0"
}
