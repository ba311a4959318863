"""The metrics, as plain functions over plain records: no I/O, no ORM, no web framework.

:mod:`.records` are the facts the read model holds, :mod:`.leads` derives each lead's story
from them (grade, stage times, owner, follow-up), :mod:`.filters` selects leads, and one
module per family of figures computes them: :mod:`.volume`, :mod:`.funnel`,
:mod:`.followup`, :mod:`.loop`, :mod:`.attribution`, :mod:`.spend`, :mod:`.targets`.
"""
