"""What agents may do with the tools dodo relays, decided in one place: tool policies
(:mod:`.tool_policy`), pinned tool definitions (:mod:`.pins`), rate limits
(:mod:`.rate_limit`) and the gate every call passes (:mod:`.gate`)."""
