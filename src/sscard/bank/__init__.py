"""The issuing bank's financial application (C-1): own tables, own key, messages only."""
