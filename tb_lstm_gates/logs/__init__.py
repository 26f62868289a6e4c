"""The log contract: summary metadata, the event writer and reader, penalty series.

Also what every writer shares: the failure guard (`guard`) and who writes
under distribution (`distribute`). Imports the core, numpy and TensorBoard's
protobufs only; never a framework.
"""
