"""Mutation-testing tooling (make mutate): the survivors recheck and the list of equivalent survivors."""
