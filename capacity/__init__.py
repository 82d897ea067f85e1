"""Capacity service: the roster of facilities, bed pools, occupancy ledger, holds, search."""
