/// A playbook as written: named steps, each a step kind applied once or once per selected node.
public struct Playbook: Sendable {
    public var name: String
    public var file: String
    public var summary: String?
    public var steps: [StepDefinition]
}

/// One `steps:` entry before expansion over the inventory.
public struct StepDefinition: Sendable {
    public struct Need: Sendable {
        public enum Scope: String, Sendable { case node, all }
        public var step: Located<String>
        public var scope: Scope
    }

    public var id: Located<String>
    public var uses: Located<String>
    /// nil = a cluster-level step that runs once.
    public var forEach: Located<NodeSelector>?
    public var needs: [Need]
    public var with: YAMLNode?
    public var when: Located<Condition>?
    /// Skip instead of failing validation when the selector matches nothing.
    public var optional: Bool
    /// Each node's instance waits for the one before it (inventory order): a rollout that goes node
    /// by node in a known order and stops at the first node that fails.
    public var inOrder: Bool = false
    public var timeout: Located<Duration>?
    public var retries: Located<Int>?
    public var location: SourceLocation
}
